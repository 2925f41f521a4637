//! A PNG reader for the screenshots of the browser tests, so that they can look at the
//! pixels of a chart and not only at the file's size.
//!
//! Why our own: no PNG decoder is in the dependency graph, and the `png` crate would add
//! `fdeflate` and a second `miniz_oxide`; Chromium's screenshots are one narrow case of the
//! format (8 bits per channel, RGB or RGBA, not interlaced), which takes the IDAT chunks,
//! zlib (flate2, already a dev-dependency) and the five row filters of RFC 2083 §6. Anything
//! else is refused with a message rather than read wrongly.

use std::io::Read as _;

/// A decoded image: `width` × `height` pixels, row by row, as RGB (alpha dropped: the
/// screenshots are opaque).
pub(crate) struct Image {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pixels: Vec<[u8; 3]>,
}

impl Image {
    /// The pixel at column `x`, row `y`.
    pub(crate) fn at(&self, x: u32, y: u32) -> [u8; 3] {
        self.pixels[(y * self.width + x) as usize]
    }

    /// The pixels of the rectangle from (`left`, `top`) to (`right`, `bottom`), exclusive,
    /// cut to the image.
    pub(crate) fn crop(&self, left: u32, top: u32, right: u32, bottom: u32) -> Image {
        let (right, bottom) = (right.min(self.width), bottom.min(self.height));
        let (left, top) = (left.min(right), top.min(bottom));
        let pixels = (top..bottom)
            .flat_map(|y| (left..right).map(move |x| (x, y)))
            .map(|(x, y)| self.at(x, y))
            .collect();
        Image {
            width: right - left,
            height: bottom - top,
            pixels,
        }
    }

    /// How many pixels are `colour`, each channel within `tolerance` (colour conversion
    /// may move a channel by one or two).
    pub(crate) fn count(&self, colour: [u8; 3], tolerance: u8) -> usize {
        self.pixels
            .iter()
            .filter(|p| {
                p.iter()
                    .zip(colour)
                    .all(|(a, b)| a.abs_diff(b) <= tolerance)
            })
            .count()
    }
}

/// Decodes `png`; panics with the reason on anything this reader does not handle.
pub(crate) fn decode(png: &[u8]) -> Image {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    let mut rest = &png[8..];
    let mut header = None;
    let mut compressed = Vec::new();
    while rest.len() >= 12 {
        let length = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        let kind = &rest[4..8];
        let data = &rest[8..8 + length];
        match kind {
            b"IHDR" => header = Some(data.to_vec()),
            b"IDAT" => compressed.extend_from_slice(data),
            b"IEND" => break,
            _ => {}
        }
        // Length, type, data and CRC.
        rest = &rest[12 + length..];
    }
    let header = header.expect("an IHDR chunk");
    let width = u32::from_be_bytes(header[0..4].try_into().unwrap());
    let height = u32::from_be_bytes(header[4..8].try_into().unwrap());
    let (depth, colour_type, interlace) = (header[8], header[9], header[12]);
    assert_eq!(depth, 8, "bit depth");
    assert_eq!(interlace, 0, "interlaced PNGs are not read here");
    let channels = match colour_type {
        2 => 3,
        6 => 4,
        other => panic!("colour type {other} is not read here"),
    };
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&compressed[..])
        .read_to_end(&mut raw)
        .expect("the image data inflates");
    let stride = width as usize * channels;
    assert_eq!(raw.len(), (stride + 1) * height as usize, "image data size");
    let mut previous = vec![0u8; stride];
    let mut pixels = Vec::with_capacity(width as usize * height as usize);
    for row in raw.chunks_exact(stride + 1) {
        let mut line = row[1..].to_vec();
        unfilter(row[0], &mut line, &previous, channels);
        pixels.extend(line.chunks_exact(channels).map(|p| [p[0], p[1], p[2]]));
        previous = line;
    }
    Image {
        width,
        height,
        pixels,
    }
}

/// Undoes one row's filter (RFC 2083 §6) in place; `up` is the previous row, already
/// unfiltered (zeros above the first), `bpp` the bytes per pixel.
fn unfilter(filter: u8, line: &mut [u8], up: &[u8], bpp: usize) {
    for i in 0..line.len() {
        let left = if i >= bpp { line[i - bpp] } else { 0 };
        let above = up[i];
        let corner = if i >= bpp { up[i - bpp] } else { 0 };
        let predicted = match filter {
            0 => 0,
            1 => left,
            2 => above,
            3 => ((u16::from(left) + u16::from(above)) / 2) as u8,
            4 => paeth(left, above, corner),
            other => panic!("filter type {other}"),
        };
        line[i] = line[i].wrapping_add(predicted);
    }
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = i16::from(a) + i16::from(b) - i16::from(c);
    let (pa, pb, pc) = (
        (p - i16::from(a)).abs(),
        (p - i16::from(b)).abs(),
        (p - i16::from(c)).abs(),
    );
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    /// A PNG of `rows` (RGBA) with row `i` written under filter `i % 5`: the filters applied
    /// forwards here, straight from their definitions, so that reading undoes each one.
    fn encode(width: u32, rows: &[Vec<u8>]) -> Vec<u8> {
        let mut raw = Vec::new();
        let zero = vec![0u8; rows[0].len()];
        for (i, row) in rows.iter().enumerate() {
            let filter = (i % 5) as u8;
            let up = if i == 0 { &zero } else { &rows[i - 1] };
            raw.push(filter);
            for x in 0..row.len() {
                let left = if x >= 4 { row[x - 4] } else { 0 };
                let corner = if x >= 4 { up[x - 4] } else { 0 };
                let predicted = match filter {
                    0 => 0,
                    1 => left,
                    2 => up[x],
                    3 => ((u16::from(left) + u16::from(up[x])) / 2) as u8,
                    _ => paeth(left, up[x], corner),
                };
                raw.push(row[x].wrapping_sub(predicted));
            }
        }
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&raw).unwrap();
        let data = z.finish().unwrap();
        let chunk = |out: &mut Vec<u8>, kind: &[u8], body: &[u8]| {
            out.extend_from_slice(&(body.len() as u32).to_be_bytes());
            out.extend_from_slice(kind);
            out.extend_from_slice(body);
            // The reader does not check CRCs.
            out.extend_from_slice(&[0; 4]);
        };
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&(rows.len() as u32).to_be_bytes());
        ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        chunk(&mut png, b"IHDR", &ihdr);
        // Split in two IDAT chunks, as encoders may.
        let (a, b) = data.split_at(data.len() / 2);
        chunk(&mut png, b"IDAT", a);
        chunk(&mut png, b"IDAT", b);
        chunk(&mut png, b"IEND", &[]);
        png
    }

    #[test]
    fn every_filter_is_undone() {
        let width = 7u32;
        let rows: Vec<Vec<u8>> = (0..10u32)
            .map(|y| {
                (0..width)
                    .flat_map(|x| {
                        let v = (x * 37 + y * 91) as u8;
                        [v, v.wrapping_mul(3), 255 - v, 255]
                    })
                    .collect()
            })
            .collect();
        let image = decode(&encode(width, &rows));
        assert_eq!((image.width, image.height), (width, 10));
        for (y, row) in rows.iter().enumerate() {
            for x in 0..width as usize {
                assert_eq!(
                    image.at(x as u32, y as u32),
                    [row[4 * x], row[4 * x + 1], row[4 * x + 2]],
                    "pixel {x},{y}"
                );
            }
        }
        let first = image.at(0, 0);
        assert!(image.count(first, 0) >= 1);
        assert_eq!(image.count([1, 2, 3], 0), 0);
    }
}
