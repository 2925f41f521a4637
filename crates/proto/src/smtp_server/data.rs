//! [`DataReader`]: the message after `DATA` (RFC 5321 §4.1.1.4), collected within a size cap.
//!
//! The listener hands it the bytes as it reads them, in segments that end at an LF or at the
//! listener's read cap. The reader removes the dot stuffing (§4.5.2: a line starting with `.`
//! had one added) and ends at `CRLF . CRLF` only: a `.` line ended by a bare LF, or after a
//! line ended by a bare LF, is message text (the end must be unambiguous, or a message could
//! smuggle a second one past another server that reads it differently). Past the cap the rest
//! is read and dropped, so the reply (`552`) comes after the sender's end of data.

/// What the last segment did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataStep {
    /// The message goes on.
    More,
    /// The end-of-data line was read: nothing after it belongs to the message.
    End,
}

/// Collects one message.
#[derive(Debug)]
pub struct DataReader {
    max: u64,
    message: Vec<u8>,
    seen: u64,
    too_large: bool,
    /// The last segment ended a line with CRLF (the start of the data counts as a line start).
    at_line_start: bool,
    /// The last segment ended with CR (its LF may come in the next segment).
    after_cr: bool,
}

impl DataReader {
    /// A reader that keeps at most `max` octets of message.
    pub fn new(max: u64) -> DataReader {
        DataReader {
            max,
            message: Vec::new(),
            seen: 0,
            too_large: false,
            at_line_start: true,
            after_cr: false,
        }
    }

    /// Takes the next segment (ending at an LF, or cut by the listener's read cap).
    pub fn push(&mut self, segment: &[u8]) -> DataStep {
        if segment.is_empty() {
            return DataStep::More;
        }
        let mut text = segment;
        if self.at_line_start {
            if segment == b".\r\n" {
                return DataStep::End;
            }
            if let Some(rest) = segment.strip_prefix(b".") {
                text = rest;
            }
        }
        let continues_cr = self.after_cr && segment == b"\n";
        self.at_line_start = segment.ends_with(b"\r\n") || continues_cr;
        self.after_cr = segment.ends_with(b"\r");
        self.seen = self.seen.saturating_add(text.len() as u64);
        if self.seen > self.max {
            if !self.too_large {
                self.too_large = true;
                self.message = Vec::new();
            }
        } else {
            self.message.extend_from_slice(text);
        }
        DataStep::More
    }

    /// Whether the message grew past the cap (it is then discarded).
    pub fn too_large(&self) -> bool {
        self.too_large
    }

    /// Octets of message read so far (after unstuffing), including any past the cap.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The message, or `None` when it was over the cap.
    pub fn into_message(self) -> Option<Vec<u8>> {
        (!self.too_large).then_some(self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(reader: &mut DataReader, segments: &[&[u8]]) -> Vec<DataStep> {
        segments.iter().map(|s| reader.push(s)).collect()
    }

    #[test]
    fn collects_lines_until_the_dot_line_and_unstuffs() {
        let mut r = DataReader::new(1000);
        let steps = feed(
            &mut r,
            &[b"Subject: x\r\n", b"\r\n", b"..leading dot\r\n", b".\r\n"],
        );
        assert_eq!(steps.last(), Some(&DataStep::End));
        assert_eq!(
            r.into_message().unwrap(),
            b"Subject: x\r\n\r\n.leading dot\r\n"
        );
    }

    #[test]
    fn an_empty_message_ends_at_once() {
        let mut r = DataReader::new(10);
        assert_eq!(r.push(b".\r\n"), DataStep::End);
        assert_eq!(r.into_message().unwrap(), b"");
    }

    #[test]
    fn only_crlf_dot_crlf_ends_the_data() {
        let mut r = DataReader::new(1000);
        // A dot line ended by a bare LF, and a dot line after a bare-LF line, are text.
        let steps = feed(&mut r, &[b"a\n", b".\r\n", b".\n", b"b\r\n"]);
        assert!(steps.iter().all(|s| *s == DataStep::More));
        assert_eq!(r.push(b".\r\n"), DataStep::End);
        assert_eq!(r.into_message().unwrap(), b"a\n.\r\n\nb\r\n");
    }

    #[test]
    fn a_line_cut_by_the_read_cap_is_not_a_line_start() {
        let mut r = DataReader::new(1000);
        // "xxxx" was cut by the read cap; the "." segment that follows is inside that line.
        assert_eq!(r.push(b"xxxx"), DataStep::More);
        assert_eq!(r.push(b".\r\n"), DataStep::More);
        // A CR at the cut and its LF in the next segment end the line.
        assert_eq!(r.push(b"yy\r"), DataStep::More);
        assert_eq!(r.push(b"\n"), DataStep::More);
        assert_eq!(r.push(b".\r\n"), DataStep::End);
        assert_eq!(r.into_message().unwrap(), b"xxxx.\r\nyy\r\n");
    }

    #[test]
    fn over_the_cap_the_rest_is_drained_and_the_message_dropped() {
        let mut r = DataReader::new(10);
        assert_eq!(r.push(b"12345\r\n"), DataStep::More);
        assert!(!r.too_large());
        assert_eq!(r.push(b"12345\r\n"), DataStep::More);
        assert!(r.too_large());
        assert_eq!(r.push(b"more\r\n"), DataStep::More);
        assert_eq!(r.push(b".\r\n"), DataStep::End);
        assert_eq!(r.seen(), 20);
        assert_eq!(r.into_message(), None);
        // Exactly at the cap is allowed.
        let mut r = DataReader::new(7);
        r.push(b"12345\r\n");
        r.push(b".\r\n");
        assert_eq!(r.into_message().unwrap().len(), 7);
    }
}
