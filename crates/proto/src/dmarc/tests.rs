//! Tests of the DMARC aggregate reader: one per quirk on small inline documents, the limits, every DMARC
//! XML sample under `shared/samples/dmarc/`, and a never-panics property on arbitrary bytes.

use std::io::Read;

use super::*;

/// A minimal valid report around `records` (raw XML of zero or more `<record>` elements).
fn doc(records: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\
         <report_metadata><org_name>example.net</org_name><email>dmarc@example.net</email>\
         <report_id>r1</report_id><date_range><begin>1700000000</begin><end>1700086399</end></date_range>\
         </report_metadata>\
         <policy_published><domain>example.com</domain><adkim>r</adkim><aspf>r</aspf><p>none</p>\
         <pct>100</pct></policy_published>{records}</feedback>"
    )
}

fn record(ip: &str, count: u64, disposition: &str, dkim: &str, spf: &str) -> String {
    format!(
        "<record><row><source_ip>{ip}</source_ip><count>{count}</count><policy_evaluated>\
         <disposition>{disposition}</disposition><dkim>{dkim}</dkim><spf>{spf}</spf></policy_evaluated></row>\
         <identifiers><header_from>example.com</header_from></identifiers>\
         <auth_results><spf><domain>example.com</domain><result>{spf}</result></spf></auth_results></record>"
    )
}

fn full(xml: &str) -> Result<Report, DmarcError> {
    parse(xml.as_bytes(), Mode::Full)
}

fn codes(report: &Report) -> Vec<&'static str> {
    report.notes.iter().map(|n| n.code.as_str()).collect()
}

#[test]
fn minimal_report_reads_metadata_policy_and_counts() {
    let xml = doc(&(record("192.0.2.1", 10, "none", "pass", "fail")
        + &record("192.0.2.2", 3, "quarantine", "fail", "fail")));
    let r = full(&xml).unwrap();
    assert_eq!(r.organization.as_deref(), Some("example.net"));
    assert_eq!(r.contact.as_deref(), Some("dmarc@example.net"));
    assert_eq!(r.report_id, "r1");
    assert_eq!((r.begin, r.end), (1_700_000_000, 1_700_086_399));
    assert_eq!(r.policy.domain.as_deref(), Some("example.com"));
    assert_eq!(r.policy.p.as_deref(), Some("none"));
    assert_eq!(r.policy.pct, Some(100));
    assert_eq!(r.policy.sp, None);
    assert_eq!(
        (r.rows, r.messages, r.dmarc_pass, r.dkim_pass, r.spf_pass),
        (2, 13, 10, 10, 0)
    );
    assert_eq!(
        (
            r.dispositions.none,
            r.dispositions.quarantine,
            r.dispositions.reject
        ),
        (10, 3, 0)
    );
    assert_eq!(r.records.len(), 2);
    assert_eq!(r.records[1].disposition, Disposition::Quarantine);
    assert!(r.notes.is_empty(), "{:?}", r.notes);
}

#[test]
fn summary_mode_keeps_counts_but_no_records() {
    let xml = doc(&record("192.0.2.1", 7, "reject", "fail", "pass"));
    let r = parse(xml.as_bytes(), Mode::Summary).unwrap();
    assert!(r.records.is_empty());
    assert_eq!(
        (r.rows, r.messages, r.spf_pass, r.dispositions.reject),
        (1, 7, 7, 7)
    );
}

#[test]
fn namespaced_rfc9990_report_matches_by_local_name() {
    let xml = "<d:feedback xmlns:d=\"urn:ietf:params:xml:ns:dmarc-2.0\"><d:version>1.0</d:version>\
        <d:report_metadata><d:org_name>o</d:org_name><d:report_id>x</d:report_id>\
        <d:date_range><d:begin>1</d:begin><d:end>2</d:end></d:date_range></d:report_metadata>\
        <d:policy_published><d:domain>example.com</d:domain><d:p>reject</d:p><d:np>reject</d:np>\
        <d:testing>n</d:testing><d:discovery_method>psl</d:discovery_method></d:policy_published>\
        <d:record><d:row><d:source_ip>2001:db8::1</d:source_ip><d:count>2</d:count><d:policy_evaluated>\
        <d:disposition>pass</d:disposition><d:dkim>pass</d:dkim><d:spf>pass</d:spf></d:policy_evaluated></d:row>\
        <d:identifiers><d:header_from>example.com</d:header_from></d:identifiers></d:record></d:feedback>";
    let r = full(xml).unwrap();
    assert_eq!(r.version.as_deref(), Some("1.0"));
    assert_eq!(r.policy.np.as_deref(), Some("reject"));
    assert_eq!(r.policy.testing.as_deref(), Some("n"));
    assert_eq!(r.dispositions.pass, 2);
    assert_eq!(r.dmarc_pass, 2);
}

#[test]
fn default_namespace_report_reads() {
    let xml = doc("").replace(
        "<feedback>",
        "<feedback xmlns=\"http://dmarc.org/dmarc-xml/0.1\">",
    );
    assert_eq!(full(&xml).unwrap().report_id, "r1");
}

#[test]
fn missing_optional_parts_are_none() {
    let xml = "<feedback><report_metadata><report_id>x</report_id>\
        <date_range><begin>5</begin><end>5</end></date_range></report_metadata>\
        <policy_published><p>none</p></policy_published>\
        <record><row><source_ip>192.0.2.1</source_ip><count>1</count><policy_evaluated>\
        <disposition>none</disposition></policy_evaluated></row><identifiers/><auth_results/></record></feedback>";
    let r = full(xml).unwrap();
    assert_eq!(r.organization, None);
    assert_eq!(r.contact, None);
    assert_eq!(r.policy.domain, None);
    assert_eq!(r.records[0].dkim, None);
    assert_eq!(r.records[0].header_from, None);
    assert!(r.records[0].auth_dkim.is_empty());
    assert_eq!(r.dmarc_pass, 0);
    assert_eq!(codes(&r), ["missing-organization"]);
}

#[test]
fn empty_elements_read_as_absent() {
    let xml = doc(
        "<record><row><source_ip>192.0.2.1</source_ip><count>1</count><policy_evaluated>\
        <disposition>none</disposition><reason><type></type><comment></comment></reason></policy_evaluated>\
        </row><identifiers><header_from>example.com</header_from><envelope_from></envelope_from>\
        </identifiers></record>",
    );
    let r = full(&xml).unwrap();
    assert_eq!(r.records[0].envelope_from, None);
    assert_eq!(r.records[0].reasons, vec![Reason::default()]);
}

#[test]
fn uppercase_words_are_lowercased_and_noted() {
    let xml =
        doc(&record("192.0.2.1", 4, "None", "PASS", "Pass")).replace("<p>none</p>", "<p>NONE</p>");
    let r = full(&xml).unwrap();
    assert_eq!(r.records[0].dkim.as_deref(), Some("pass"));
    assert_eq!(r.records[0].auth_spf[0].result.as_deref(), Some("pass"));
    assert_eq!(r.policy.p.as_deref(), Some("none"));
    assert_eq!((r.dkim_pass, r.spf_pass, r.dispositions.none), (4, 4, 4));
    assert_eq!(codes(&r), ["uppercase-word"]);
}

#[test]
fn summary_mode_notes_uppercase_auth_results_too() {
    let xml = doc(&record("192.0.2.1", 1, "none", "pass", "pass")
        .replace("<result>pass</result>", "<result>SoftFail</result>"));
    let r = parse(xml.as_bytes(), Mode::Summary).unwrap();
    assert_eq!(codes(&r), ["uppercase-word"]);
}

#[test]
fn multiple_auth_results_and_reasons_keep_order() {
    let xml = doc(
        "<record><row><source_ip>192.0.2.1</source_ip><count>1</count><policy_evaluated>\
        <disposition>none</disposition><dkim>fail</dkim><spf>fail</spf>\
        <reason><type>forwarded</type></reason><reason><type>Local_Policy</type><comment>c</comment></reason>\
        </policy_evaluated></row><identifiers><header_from>example.com</header_from></identifiers>\
        <auth_results><dkim><domain>a.example</domain><selector>s1</selector><result>pass</result></dkim>\
        <dkim><domain>b.example</domain><result>fail</result><selector>s2</selector></dkim>\
        <spf><domain>example.com</domain><scope>helo</scope><result>softfail</result></spf>\
        <spf><domain>example.org</domain><result>hardfail</result></spf></auth_results></record>",
    );
    let rec = &full(&xml).unwrap().records[0];
    assert_eq!(rec.reasons.len(), 2);
    assert_eq!(rec.reasons[1].kind.as_deref(), Some("local_policy"));
    assert_eq!(rec.reasons[1].comment.as_deref(), Some("c"));
    assert_eq!(rec.auth_dkim.len(), 2);
    assert_eq!(rec.auth_dkim[1].selector.as_deref(), Some("s2"));
    assert_eq!(rec.auth_spf[0].scope.as_deref(), Some("helo"));
    assert_eq!(rec.auth_spf[1].result.as_deref(), Some("hardfail"));
}

#[test]
fn whitespace_around_values_is_trimmed() {
    let xml = doc("").replace("<end>1700086399</end>", "<end>1700086399 \t</end>");
    assert_eq!(full(&xml).unwrap().end, 1_700_086_399);
}

#[test]
fn bom_is_skipped() {
    let mut xml = b"\xEF\xBB\xBF".to_vec();
    xml.extend_from_slice(doc("").as_bytes());
    assert!(parse(&xml, Mode::Full).is_ok());
}

#[test]
fn stray_text_between_elements_is_noted() {
    let xml = doc("").replace("<pct>100</pct>", "<pct>100</pct>\n11\n");
    assert_eq!(codes(&full(&xml).unwrap()), ["stray-text"]);
}

#[test]
fn unknown_elements_and_comments_are_skipped() {
    let xml = doc("").replace(
        "<pct>100</pct>",
        "<pct>100</pct><fo>1</fo><unknown-tag1><x>y</x></unknown-tag1><!-- c --><extensions/>",
    );
    assert!(full(&xml).is_ok());
}

#[test]
fn predefined_and_numeric_entities_resolve() {
    let xml = doc("").replace(
        "<org_name>example.net</org_name>",
        "<org_name>&quot;a&amp;b&#x41;&#66;</org_name>",
    );
    assert_eq!(full(&xml).unwrap().organization.as_deref(), Some("\"a&bAB"));
}

#[test]
fn cdata_is_text() {
    let xml = doc("").replace(
        "<report_id>r1</report_id>",
        "<report_id><![CDATA[a<b]]></report_id>",
    );
    assert_eq!(full(&xml).unwrap().report_id, "a<b");
}

#[test]
fn bad_source_ip_is_kept_and_noted() {
    let r = full(&doc(&record("not-an-ip", 1, "none", "pass", "pass"))).unwrap();
    assert_eq!(r.records[0].source_ip, "not-an-ip");
    assert_eq!(codes(&r), ["bad-source-ip"]);
}

#[test]
fn billion_laughs_doctype_is_refused_without_expansion() {
    let xml = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">\
        <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\
        <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>\
        <feedback><report_metadata><org_name>&lol3;</org_name></report_metadata></feedback>";
    let e = full(xml).unwrap_err();
    assert_eq!(e, DmarcError::Doctype);
    assert_eq!(e.code(), "unsupported");
}

#[test]
fn undeclared_entity_is_malformed() {
    let xml = doc("").replace(
        "<org_name>example.net</org_name>",
        "<org_name>&lol;</org_name>",
    );
    let e = full(&xml).unwrap_err();
    assert_eq!(e, DmarcError::UnknownEntity("lol".to_owned()));
    assert_eq!(e.code(), "malformed");
}

#[test]
fn deep_nesting_is_too_large() {
    let inner = "<x>".repeat(MAX_DEPTH) + &"</x>".repeat(MAX_DEPTH);
    let xml = doc("").replace("<pct>100</pct>", &inner);
    let e = full(&xml).unwrap_err();
    assert_eq!(
        e,
        DmarcError::TooLarge {
            what: "element nesting",
            limit: MAX_DEPTH as u64
        }
    );
    assert_eq!(e.code(), "too-large");
}

#[test]
fn long_text_is_too_large() {
    let xml = doc("").replace("r1", &"r".repeat(MAX_TEXT_BYTES + 1));
    assert_eq!(full(&xml).unwrap_err().code(), "too-large");
}

#[test]
fn too_many_auth_results_is_too_large() {
    let many = "<dkim><domain>a</domain></dkim>".repeat(MAX_ITEMS_PER_RECORD + 1);
    let xml = doc(&record("192.0.2.1", 1, "none", "pass", "pass")
        .replace("<auth_results>", &format!("<auth_results>{many}")));
    assert_eq!(full(&xml).unwrap_err().code(), "too-large");
}

#[test]
fn hundred_thousand_records_in_summary_mode() {
    let one = record("192.0.2.1", 2, "none", "pass", "fail");
    let xml = doc(&one.repeat(100_000));
    let r = parse(xml.as_bytes(), Mode::Summary).unwrap();
    assert_eq!(
        (r.rows, r.messages, r.dkim_pass, r.dispositions.none),
        (100_000, 200_000, 200_000, 200_000)
    );
    assert!(r.records.is_empty());
    // Full mode keeps the first MAX_RECORDS records, counts all of them and says so.
    let f = parse(xml.as_bytes(), Mode::Full).unwrap();
    assert_eq!(
        (f.rows, f.messages, f.dkim_pass, f.dispositions.none),
        (100_000, 200_000, 200_000, 200_000)
    );
    assert_eq!(f.records.len(), MAX_RECORDS);
    let codes: Vec<&str> = f.notes.iter().map(|n| n.code.as_str()).collect();
    assert_eq!(codes, ["records-truncated"]);
    assert!(
        f.notes[0].message.contains("50000"),
        "{}",
        f.notes[0].message
    );
}

#[test]
fn exactly_max_records_in_full_mode_is_not_truncated() {
    let one = record("192.0.2.1", 1, "none", "pass", "fail");
    let xml = doc(&one.repeat(MAX_RECORDS));
    let f = parse(xml.as_bytes(), Mode::Full).unwrap();
    assert_eq!((f.rows, f.records.len()), (MAX_RECORDS as u64, MAX_RECORDS));
    assert!(f.notes.is_empty(), "{:?}", f.notes);
    let more = doc(&one.repeat(MAX_RECORDS + 1));
    let f = parse(more.as_bytes(), Mode::Full).unwrap();
    assert_eq!(
        (f.rows, f.records.len()),
        (MAX_RECORDS as u64 + 1, MAX_RECORDS)
    );
    assert_eq!(f.notes.len(), 1);
}

#[test]
fn empty_input_is_malformed() {
    assert_eq!(parse(b"", Mode::Full).unwrap_err().code(), "malformed");
}

#[test]
fn truncated_input_is_malformed() {
    let xml = doc("");
    let e = full(&xml[..xml.len() - 20]).unwrap_err();
    assert_eq!(e.code(), "malformed");
}

#[test]
fn invalid_utf8_is_malformed() {
    let xml = doc("").replace("example.net", "bad\u{1}").into_bytes();
    let mut xml = xml;
    let at = xml.iter().position(|b| *b == 1).unwrap();
    xml[at] = 0x91;
    assert_eq!(parse(&xml, Mode::Full).unwrap_err().code(), "malformed");
}

#[test]
fn unescaped_lt_in_text_is_malformed() {
    let xml = doc("").replace(
        "<email>dmarc@example.net</email>",
        "<email><bad@x.net></email>",
    );
    assert_eq!(full(&xml).unwrap_err().code(), "malformed");
}

#[test]
fn second_root_element_is_malformed() {
    let xml = doc("") + "<feedback/>";
    assert_eq!(full(&xml).unwrap_err().code(), "malformed");
}

#[test]
fn other_root_is_not_a_report() {
    let e = full("<html><body/></html>").unwrap_err();
    assert_eq!(e, DmarcError::NotAReport("html".to_owned()));
    assert_eq!(e.code(), "invalid");
}

#[test]
fn other_encoding_is_unsupported() {
    let xml = doc("").replace("UTF-8", "ISO-8859-1");
    assert_eq!(
        full(&xml).unwrap_err(),
        DmarcError::UnsupportedEncoding("iso-8859-1".to_owned())
    );
}

#[test]
fn missing_report_id_is_invalid() {
    let xml = doc("").replace("<report_id>r1</report_id>", "");
    assert_eq!(
        full(&xml).unwrap_err(),
        DmarcError::Missing("report_metadata/report_id")
    );
}

#[test]
fn missing_date_range_is_invalid() {
    let xml = doc("").replace("<begin>1700000000</begin>", "");
    assert_eq!(
        full(&xml).unwrap_err(),
        DmarcError::Missing("report_metadata/date_range/begin")
    );
}

#[test]
fn missing_policy_published_is_invalid() {
    let xml = doc("");
    let start = xml.find("<policy_published>").unwrap();
    let end = xml.find("</policy_published>").unwrap() + "</policy_published>".len();
    let xml = format!("{}{}", &xml[..start], &xml[end..]);
    assert_eq!(
        full(&xml).unwrap_err(),
        DmarcError::Missing("policy_published")
    );
}

#[test]
fn duplicate_report_id_is_ambiguous() {
    let xml = doc("").replace(
        "<report_id>r1</report_id>",
        "<report_id>r1</report_id><report_id>r2</report_id>",
    );
    assert_eq!(
        full(&xml).unwrap_err(),
        DmarcError::Duplicate("report_metadata/report_id")
    );
}

#[test]
fn duplicate_count_in_a_row_is_ambiguous() {
    let xml = doc(&record("192.0.2.1", 1, "none", "pass", "pass")
        .replace("<count>1</count>", "<count>1</count><count>2</count>"));
    assert_eq!(
        full(&xml).unwrap_err(),
        DmarcError::Duplicate("record/row/count")
    );
}

#[test]
fn duplicate_policy_published_is_ambiguous() {
    let xml = doc("").replace(
        "</policy_published>",
        "</policy_published><policy_published/>",
    );
    assert_eq!(
        full(&xml).unwrap_err(),
        DmarcError::Duplicate("policy_published")
    );
}

#[test]
fn end_before_begin_is_invalid() {
    let xml = doc("").replace("<end>1700086399</end>", "<end>1</end>");
    assert_eq!(full(&xml).unwrap_err().code(), "invalid");
}

#[test]
fn negative_count_is_invalid() {
    let xml = doc(&record("192.0.2.1", 1, "none", "pass", "pass")
        .replace("<count>1</count>", "<count>-1</count>"));
    assert_eq!(
        full(&xml).unwrap_err(),
        DmarcError::BadValue {
            field: "record/row/count",
            value: "-1".to_owned()
        }
    );
}

#[test]
fn absurd_count_is_invalid() {
    let xml = doc(&record(
        "192.0.2.1",
        MAX_ROW_COUNT + 1,
        "none",
        "pass",
        "pass",
    ));
    assert_eq!(full(&xml).unwrap_err().code(), "invalid");
}

#[test]
fn unknown_disposition_is_invalid() {
    let xml = doc(&record("192.0.2.1", 1, "maybe", "pass", "pass"));
    assert_eq!(full(&xml).unwrap_err().code(), "invalid");
}

#[test]
fn missing_count_is_invalid() {
    let xml = doc(&record("192.0.2.1", 1, "none", "pass", "pass").replace("<count>1</count>", ""));
    assert_eq!(
        full(&xml).unwrap_err(),
        DmarcError::Missing("record/row/count")
    );
}

#[test]
fn pct_out_of_range_is_invalid() {
    let xml = doc("").replace("<pct>100</pct>", "<pct>101</pct>");
    assert_eq!(full(&xml).unwrap_err().code(), "invalid");
}

#[test]
fn oversized_input_is_too_large() {
    let xml = vec![b' '; REPORT_MAX_BYTES + 1];
    assert_eq!(parse(&xml, Mode::Summary).unwrap_err().code(), "too-large");
}

#[test]
fn reader_in_one_byte_chunks_reads_the_same() {
    let xml = doc(&(record("192.0.2.1", 3, "none", "pass", "fail")
        + &record("2001:db8::2", 1, "reject", "fail", "fail")));
    let chunked = std::io::BufReader::with_capacity(1, xml.as_bytes());
    assert_eq!(
        parse_reader(chunked, Mode::Full).unwrap(),
        full(&xml).unwrap()
    );
}

#[test]
fn a_byte_order_mark_split_over_reads_is_still_a_byte_order_mark() {
    // Found by the dmarc_report fuzz target: quick-xml knows the mark only in one read.
    let xml = format!(
        "\u{feff}{}",
        doc(&record("192.0.2.1", 3, "none", "pass", "fail"))
    );
    let chunked = std::io::BufReader::with_capacity(1, xml.as_bytes());
    assert_eq!(
        parse_reader(chunked, Mode::Full).unwrap(),
        full(&xml).unwrap()
    );
    // A document shorter than the mark.
    let tiny = std::io::BufReader::with_capacity(1, &b"<a"[..]);
    assert_eq!(
        parse_reader(tiny, Mode::Summary).unwrap_err().code(),
        "malformed"
    );
}

#[test]
fn failing_stream_is_a_read_error() {
    struct Broken;
    impl std::io::Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "corrupt deflate stream",
            ))
        }
    }
    let e = parse_reader(std::io::BufReader::new(Broken), Mode::Summary).unwrap_err();
    assert!(matches!(e, DmarcError::Read(_)), "{e:?}");
    assert_eq!(e.code(), "malformed");
}

#[test]
fn oversized_stream_is_too_large() {
    let spaces = std::io::repeat(b' ').take(REPORT_MAX_BYTES as u64 + 10);
    let e = parse_reader(std::io::BufReader::new(spaces), Mode::Summary).unwrap_err();
    assert_eq!(e.code(), "too-large");
}

mod samples;

proptest::proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
        let _ = parse(&bytes, Mode::Full);
    }

    #[test]
    fn never_panics_on_mangled_reports(cut in 0usize..2000, byte in proptest::num::u8::ANY) {
        let mut xml = doc(&record("192.0.2.1", 1, "none", "pass", "pass")).into_bytes();
        let at = cut % xml.len();
        xml[at] = byte;
        let _ = parse(&xml, Mode::Full);
        let _ = parse(&xml[..at], Mode::Summary);
    }
}
