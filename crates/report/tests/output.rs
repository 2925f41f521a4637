//! The output contract (`shared/spec/report-output.md`) checked on real samples: known reports field by
//! field, and every sample's object against the contract's keys, their order and their JSON types.

use mtasts_proto::dmarc::Mode;
use mtasts_report::output::{to_value, write_jsonl};
use mtasts_report::{Found, Limits, walk, walk_path};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Value, json};

/// The sample folder, or `None` (after the testkit's one skip rule) when it is absent.
fn samples() -> Option<std::path::PathBuf> {
    mtasts_testkit::services::samples_dir()
}

/// The one thing found in the sample `name`, labelled `name`.
fn one(root: &std::path::Path, name: &str, limits: &Limits) -> Found {
    let bytes = std::fs::read(root.join(name)).expect("read sample");
    let mut found = walk(&bytes, name, limits);
    assert_eq!(found.len(), 1, "{name}: {found:?}");
    found.remove(0)
}

fn summary_limits() -> Limits {
    let mut limits = Limits::default();
    limits.dmarc_mode = Mode::Summary;
    limits
}

fn line(found: &Found, summary: bool) -> String {
    let mut out = Vec::new();
    write_jsonl(found, summary, &mut out).expect("write to a Vec");
    String::from_utf8(out).expect("JSON is UTF-8")
}

#[test]
fn the_rfc_8460_example_report_field_by_field() {
    let Some(root) = samples() else { return };
    let found = one(&root, "tlsrpt/mail-auth/rpt01.json", &Limits::default());
    let expected = json!({
        "kind": "tlsrpt",
        "source": "tlsrpt/mail-auth/rpt01.json",
        "organization": "Company-X",
        "report_id": "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
        "contact": "sts-reporting@company-x.example",
        "begin": "2016-04-01T00:00:00Z",
        "end": "2016-04-01T23:59:59Z",
        "policies": [{
            "type": "sts",
            "domain": "company-y.example",
            "strings": ["version: STSv1", "mode: testing", "mx: *.mail.company-y.example", "max_age: 86400"],
            "mx": ["*.mail.company-y.example"],
            "success": 5326,
            "failure": 303,
            "failures": [
                { "result": "certificate-expired", "count": 100,
                  "sending_ip": "2001:db8:abcd:0012::1", "receiving_mx": "mx1.mail.company-y.example",
                  "receiving_helo": null, "receiving_ip": null, "additional_info": null, "reason_code": null },
                { "result": "starttls-not-supported", "count": 200,
                  "sending_ip": "2001:db8:abcd:0013::1", "receiving_mx": "mx2.mail.company-y.example",
                  "receiving_helo": null, "receiving_ip": "203.0.113.56",
                  "additional_info": "https://reports.company-x.example/report_info ? id = 5065427 c - 23 d3# StarttlsNotSupported ",
                  "reason_code": null },
                { "result": "validation-failure", "count": 3,
                  "sending_ip": "198.51.100.62", "receiving_mx": "mx-backup.mail.company-y.example",
                  "receiving_helo": null, "receiving_ip": "203.0.113.58", "additional_info": null,
                  "reason_code": "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED" }
            ]
        }],
        "notes": []
    });
    assert_eq!(to_value(&found, false), expected);
    // `summary` only concerns DMARC records: a TLS report is the same.
    assert_eq!(to_value(&found, true), expected);
}

#[test]
fn a_microsoft_report_without_time_zones_is_utc_with_a_note() {
    let Some(root) = samples() else { return };
    let found = one(
        &root,
        "tlsrpt/mta-sts-exporter/microsoft-2.json",
        &Limits::default(),
    );
    let v = to_value(&found, false);
    assert_eq!(v["organization"], "Microsoft Corporation");
    assert_eq!(v["report_id"], "133561180919336230+example.com");
    assert_eq!(v["begin"], "2024-03-26T00:00:00Z");
    assert_eq!(v["end"], "2024-03-26T23:59:59Z");
    let policy = &v["policies"][0];
    assert_eq!(policy["type"], "sts");
    assert_eq!(policy["domain"], "example.com");
    assert_eq!(policy["mx"], json!([]), "no mx-host is an empty list");
    assert_eq!(policy["success"], 7);
    assert_eq!(policy["failure"], 0);
    assert_eq!(policy["failures"], json!([]));
    let codes: Vec<&Value> = v["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .map(|n| &n["code"])
        .collect();
    assert_eq!(codes, [&json!("time-without-zone")]);
    assert!(
        v["notes"][0]["message"]
            .as_str()
            .expect("message")
            .contains("zone")
    );
}

#[test]
fn tlsa_and_no_policy_found_policies_and_a_detail_without_addresses() {
    let Some(root) = samples() else { return };
    let v = to_value(
        &one(
            &root,
            "tlsrpt/dmarc-report-viewer/microsoft.json",
            &Limits::default(),
        ),
        false,
    );
    assert_eq!(v["policies"][1]["type"], "tlsa");
    assert_eq!(
        v["policies"][1]["strings"].as_array().map(Vec::len),
        Some(1)
    );

    let v = to_value(
        &one(
            &root,
            "tlsrpt/dmarc-report-viewer/no-policy.json",
            &Limits::default(),
        ),
        false,
    );
    assert_eq!(v["policies"][0]["type"], "no-policy-found");
    assert_eq!(v["policies"][0]["domain"], "foo-bar.io");
    assert_eq!(v["policies"][0]["strings"], json!([]));

    let v = to_value(
        &one(
            &root,
            "tlsrpt/dmarc-report-viewer/no_ip_and_mx.json",
            &Limits::default(),
        ),
        false,
    );
    assert_eq!(
        v["policies"][0]["failures"],
        json!([{ "result": "sts-policy-fetch-error", "count": 3, "sending_ip": null, "receiving_mx": null,
                 "receiving_helo": null, "receiving_ip": null, "additional_info": null, "reason_code": null }])
    );
}

#[test]
fn the_google_tls_report_mail_names_its_part() {
    let Some(root) = samples() else { return };
    let found = one(
        &root,
        "tlsrpt/parsedmarc/google.com_smtp_tls_report.eml",
        &Limits::default(),
    );
    let v = to_value(&found, true);
    assert_eq!(v["kind"], "tlsrpt");
    assert_eq!(
        v["source"],
        "tlsrpt/parsedmarc/google.com_smtp_tls_report.eml#2"
    );
    assert_eq!(v["organization"], "Google Inc.");
    assert_eq!(v["contact"], "smtp-tls-reporting@google.com");
}

#[test]
fn the_rfc_9990_sample_field_by_field() {
    let Some(root) = samples() else { return };
    let found = one(
        &root,
        "dmarc/parsedmarc/rfc9990-sample.xml",
        &Limits::default(),
    );
    let expected = json!({
        "kind": "dmarc",
        "source": "dmarc/parsedmarc/rfc9990-sample.xml",
        "organization": "Sample Reporter",
        "report_id": "3v98abbp8ya9n3va8yr8oa3ya",
        "contact": "report_sender@example-reporter.com",
        "begin": "1979-08-07T00:00:00Z",
        "end": "1979-08-07T23:59:59Z",
        "policy": { "domain": "example.com", "p": "quarantine", "sp": "none", "np": "none",
                    "adkim": null, "aspf": null, "pct": null, "testing": "n" },
        "rows": 1,
        "messages": 123,
        "dmarc_pass": 123,
        "dkim_pass": 123,
        "spf_pass": 0,
        "dispositions": { "none": 0, "quarantine": 0, "reject": 0, "pass": 123 },
        "records": [{
            "source_ip": "192.0.2.123", "count": 123, "disposition": "pass", "dkim": "pass", "spf": "fail",
            "header_from": "example.com", "envelope_from": "example.com", "envelope_to": null,
            "reasons": [],
            "auth_dkim": [{ "domain": "example.com", "selector": "abc123", "result": "pass" }],
            "auth_spf": [{ "domain": "example.com", "scope": null, "result": "fail" }]
        }],
        "notes": []
    });
    assert_eq!(to_value(&found, false), expected);

    let mut summary = expected;
    summary.as_object_mut().expect("object").remove("records");
    let found = one(
        &root,
        "dmarc/parsedmarc/rfc9990-sample.xml",
        &summary_limits(),
    );
    assert_eq!(to_value(&found, true), summary);
}

#[test]
fn upper_case_result_words_are_lowercased() {
    let Some(root) = samples() else { return };
    let found = one(
        &root,
        "dmarc/parsedmarc/report_with_upper_cased_pass.xml",
        &Limits::default(),
    );
    let v = to_value(&found, false);
    assert_eq!(v["begin"], "2019-11-28T15:35:00Z");
    assert_eq!(v["end"], "2019-12-02T16:38:03Z");
    assert_eq!(
        v["policy"],
        json!({ "domain": "example.com", "p": "reject", "sp": null, "np": null, "adkim": "r", "aspf": "r",
                "pct": 100, "testing": null })
    );
    assert_eq!(
        v["dispositions"],
        json!({ "none": 1, "quarantine": 0, "reject": 0, "pass": 0 })
    );
    assert_eq!(
        (&v["dmarc_pass"], &v["dkim_pass"], &v["spf_pass"]),
        (&json!(1), &json!(1), &json!(1))
    );
    let record = &v["records"][0];
    assert_eq!(record["disposition"], "none");
    assert_eq!(record["dkim"], "pass");
    assert_eq!(record["spf"], "pass");
    assert_eq!(
        record["auth_dkim"],
        json!([{ "domain": "example.com", "selector": null, "result": "pass" }])
    );
    assert_eq!(
        record["auth_spf"],
        json!([{ "domain": "example.com", "scope": null, "result": "pass" }])
    );
    let codes: Vec<&Value> = v["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .map(|n| &n["code"])
        .collect();
    assert!(codes.contains(&&json!("uppercase-word")), "{codes:?}");
}

#[test]
fn an_unreadable_input_is_an_error_object() {
    let found = walk(b"hello, world", "junk.txt", &Limits::default());
    let [error] = found.as_slice() else {
        panic!("{found:?}")
    };
    let v = to_value(error, false);
    assert_eq!(v["kind"], "error");
    assert_eq!(v["source"], "junk.txt");
    assert_eq!(v["code"], "unrecognized");
    assert!(!v["error"].as_str().expect("error text").is_empty());
    assert_eq!(v.as_object().expect("object").len(), 4);
    assert_eq!(
        line(error, false),
        format!(
            r#"{{"kind":"error","source":"junk.txt","code":"unrecognized","error":{}}}"#,
            v["error"]
        ) + "\n"
    );
}

#[test]
fn summary_leaves_records_out_and_keeps_the_counts() {
    let Some(root) = samples() else { return };
    let name = "dmarc/parsedmarc/!large-example.com!1711897200!1711983600.xml";
    let full = to_value(&one(&root, name, &Limits::default()), false);
    let summary = to_value(&one(&root, name, &summary_limits()), true);
    assert!(full["records"].as_array().is_some_and(|r| !r.is_empty()));
    assert!(summary.get("records").is_none());
    let mut without = full.clone();
    without.as_object_mut().expect("object").remove("records");
    assert_eq!(without, summary);
    // A report read in full mode and printed with `summary` also leaves them out.
    assert!(
        to_value(&one(&root, name, &Limits::default()), true)
            .get("records")
            .is_none()
    );
}

/// What a contract value must be.
#[derive(Clone, Copy, Debug)]
enum Schema {
    /// A string.
    Str,
    /// A string or null.
    OptStr,
    /// An RFC 3339 time in UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    Time,
    /// A non-negative integer.
    Count,
    /// A non-negative integer or null.
    OptCount,
    /// One of these words.
    Word(&'static [&'static str]),
    /// A list of these.
    List(&'static Schema),
    /// An object with exactly these keys, in this order.
    Obj(&'static [(&'static str, Schema)]),
}

const NOTE: Schema = Schema::Obj(&[("code", Schema::Str), ("message", Schema::Str)]);
const FAILURE: Schema = Schema::Obj(&[
    ("result", Schema::Str),
    ("count", Schema::Count),
    ("sending_ip", Schema::OptStr),
    ("receiving_mx", Schema::OptStr),
    ("receiving_helo", Schema::OptStr),
    ("receiving_ip", Schema::OptStr),
    ("additional_info", Schema::OptStr),
    ("reason_code", Schema::OptStr),
]);
const POLICY: Schema = Schema::Obj(&[
    ("type", Schema::Str),
    ("domain", Schema::OptStr),
    ("strings", Schema::List(&Schema::Str)),
    ("mx", Schema::List(&Schema::Str)),
    ("success", Schema::Count),
    ("failure", Schema::Count),
    ("failures", Schema::List(&FAILURE)),
]);
const TLSRPT: Schema = Schema::Obj(&[
    ("kind", Schema::Word(&["tlsrpt"])),
    ("source", Schema::Str),
    ("organization", Schema::Str),
    ("report_id", Schema::Str),
    ("contact", Schema::OptStr),
    ("begin", Schema::Time),
    ("end", Schema::Time),
    ("policies", Schema::List(&POLICY)),
    ("notes", Schema::List(&NOTE)),
]);
const PUBLISHED: Schema = Schema::Obj(&[
    ("domain", Schema::OptStr),
    ("p", Schema::OptStr),
    ("sp", Schema::OptStr),
    ("np", Schema::OptStr),
    ("adkim", Schema::OptStr),
    ("aspf", Schema::OptStr),
    ("pct", Schema::OptCount),
    ("testing", Schema::OptStr),
]);
const DISPOSITIONS: Schema = Schema::Obj(&[
    ("none", Schema::Count),
    ("quarantine", Schema::Count),
    ("reject", Schema::Count),
    ("pass", Schema::Count),
]);
const RECORD: Schema = Schema::Obj(&[
    ("source_ip", Schema::Str),
    ("count", Schema::Count),
    (
        "disposition",
        Schema::Word(&["none", "quarantine", "reject", "pass"]),
    ),
    ("dkim", Schema::OptStr),
    ("spf", Schema::OptStr),
    ("header_from", Schema::OptStr),
    ("envelope_from", Schema::OptStr),
    ("envelope_to", Schema::OptStr),
    (
        "reasons",
        Schema::List(&Schema::Obj(&[
            ("type", Schema::OptStr),
            ("comment", Schema::OptStr),
        ])),
    ),
    (
        "auth_dkim",
        Schema::List(&Schema::Obj(&[
            ("domain", Schema::OptStr),
            ("selector", Schema::OptStr),
            ("result", Schema::OptStr),
        ])),
    ),
    (
        "auth_spf",
        Schema::List(&Schema::Obj(&[
            ("domain", Schema::OptStr),
            ("scope", Schema::OptStr),
            ("result", Schema::OptStr),
        ])),
    ),
]);
const DMARC_HEAD: [(&str, Schema); 14] = [
    ("kind", Schema::Word(&["dmarc"])),
    ("source", Schema::Str),
    ("organization", Schema::OptStr),
    ("report_id", Schema::Str),
    ("contact", Schema::OptStr),
    ("begin", Schema::Time),
    ("end", Schema::Time),
    ("policy", PUBLISHED),
    ("rows", Schema::Count),
    ("messages", Schema::Count),
    ("dmarc_pass", Schema::Count),
    ("dkim_pass", Schema::Count),
    ("spf_pass", Schema::Count),
    ("dispositions", DISPOSITIONS),
];
const DMARC: Schema = Schema::Obj(&[
    DMARC_HEAD[0],
    DMARC_HEAD[1],
    DMARC_HEAD[2],
    DMARC_HEAD[3],
    DMARC_HEAD[4],
    DMARC_HEAD[5],
    DMARC_HEAD[6],
    DMARC_HEAD[7],
    DMARC_HEAD[8],
    DMARC_HEAD[9],
    DMARC_HEAD[10],
    DMARC_HEAD[11],
    DMARC_HEAD[12],
    DMARC_HEAD[13],
    ("records", Schema::List(&RECORD)),
    ("notes", Schema::List(&NOTE)),
]);
const DMARC_SUMMARY: Schema = Schema::Obj(&[
    DMARC_HEAD[0],
    DMARC_HEAD[1],
    DMARC_HEAD[2],
    DMARC_HEAD[3],
    DMARC_HEAD[4],
    DMARC_HEAD[5],
    DMARC_HEAD[6],
    DMARC_HEAD[7],
    DMARC_HEAD[8],
    DMARC_HEAD[9],
    DMARC_HEAD[10],
    DMARC_HEAD[11],
    DMARC_HEAD[12],
    DMARC_HEAD[13],
    ("notes", Schema::List(&NOTE)),
]);
const ERROR: Schema = Schema::Obj(&[
    ("kind", Schema::Word(&["error"])),
    ("source", Schema::Str),
    (
        "code",
        Schema::Word(&[
            "unrecognized",
            "malformed",
            "invalid",
            "too-large",
            "unsupported",
        ]),
    ),
    ("error", Schema::Str),
]);

/// A JSON value that keeps its objects' keys in the order written.
#[derive(Debug)]
enum Ordered {
    Null,
    Bool,
    Number(serde_json::Number),
    String(String),
    Array(Vec<Ordered>),
    Object(Vec<(String, Ordered)>),
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(OrderedVisitor)
    }
}

struct OrderedVisitor;

impl<'de> Visitor<'de> for OrderedVisitor {
    type Value = Ordered;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_unit<E>(self) -> Result<Ordered, E> {
        Ok(Ordered::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Ordered, E> {
        Ok(Ordered::Bool)
    }
    fn visit_u64<E>(self, v: u64) -> Result<Ordered, E> {
        Ok(Ordered::Number(v.into()))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Ordered, E> {
        Ok(Ordered::Number(v.into()))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Ordered, E> {
        serde_json::Number::from_f64(v)
            .map(Ordered::Number)
            .ok_or_else(|| E::custom("not finite"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Ordered, E> {
        Ok(Ordered::String(v.to_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Ordered::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
        let mut out = Vec::new();
        while let Some(entry) = map.next_entry()? {
            out.push(entry);
        }
        Ok(Ordered::Object(out))
    }
}

fn is_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// Checks `v` against `schema`; `path` names the place in the failure message.
fn conforms(v: &Ordered, schema: Schema, path: &str) {
    let unsigned = |n: &serde_json::Number| n.as_u64().is_some();
    match (schema, v) {
        (Schema::Str, Ordered::String(_))
        | (Schema::OptStr, Ordered::String(_) | Ordered::Null)
        | (Schema::OptCount, Ordered::Null) => {}
        (Schema::Time, Ordered::String(s)) => {
            assert!(is_time(s), "{path}: {s:?} is not RFC 3339 UTC")
        }
        (Schema::Count | Schema::OptCount, Ordered::Number(n)) => {
            assert!(unsigned(n), "{path}: {n} is not a count")
        }
        (Schema::Word(words), Ordered::String(s)) => {
            assert!(words.contains(&s.as_str()), "{path}: {s:?}")
        }
        (Schema::List(item), Ordered::Array(items)) => {
            for (i, v) in items.iter().enumerate() {
                conforms(v, *item, &format!("{path}[{i}]"));
            }
        }
        (Schema::Obj(fields), Ordered::Object(entries)) => {
            let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
            let want: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
            assert_eq!(keys, want, "{path}: keys and their order");
            for ((key, v), (_, schema)) in entries.iter().zip(fields) {
                conforms(v, *schema, &format!("{path}.{key}"));
            }
        }
        (schema, v) => panic!("{path}: {v:?} is not {schema:?}"),
    }
}

/// The DMARC counts agree with each other and, in full mode, with the records.
fn counts_agree(v: &Value) {
    let n = |k: &str| v[k].as_u64().expect(k);
    let d = &v["dispositions"];
    let dispositions: u64 = ["none", "quarantine", "reject", "pass"]
        .iter()
        .map(|k| d[k].as_u64().expect("disposition count"))
        .sum();
    let source = &v["source"];
    assert_eq!(dispositions, n("messages"), "{source}: dispositions");
    assert!(
        n("dkim_pass") <= n("dmarc_pass") && n("spf_pass") <= n("dmarc_pass"),
        "{source}"
    );
    assert!(n("dmarc_pass") <= n("messages"), "{source}");
    if let Some(records) = v.get("records").and_then(Value::as_array) {
        assert_eq!(records.len() as u64, n("rows"), "{source}: rows");
        let sum: u64 = records
            .iter()
            .map(|r| r["count"].as_u64().expect("count"))
            .sum();
        assert_eq!(sum, n("messages"), "{source}: messages");
    }
}

#[test]
fn every_sample_has_every_contract_key_in_order_with_its_type() {
    let Some(root) = samples() else { return };
    for (limits, summary) in [(Limits::default(), false), (summary_limits(), true)] {
        let found = walk_path(&root, &limits).expect("walk the samples");
        let mut kinds = [0; 3];
        for f in &found {
            let text = line(f, summary);
            assert!(
                text.ends_with('\n') && !text[..text.len() - 1].contains('\n'),
                "one line: {text}"
            );
            let ordered: Ordered = serde_json::from_str(&text).expect("valid JSON");
            let value: Value = serde_json::from_str(&text).expect("valid JSON");
            assert_eq!(
                value,
                to_value(f, summary),
                "write_jsonl and to_value agree"
            );
            let (schema, slot) = match f {
                Found::TlsRpt { .. } => (TLSRPT, 0),
                Found::Dmarc { .. } if summary => (DMARC_SUMMARY, 1),
                Found::Dmarc { .. } => (DMARC, 1),
                Found::Error(_) => (ERROR, 2),
                _ => panic!("unknown kind {f:?}"),
            };
            kinds[slot] += 1;
            conforms(&ordered, schema, f.source());
            if slot == 1 {
                counts_agree(&value);
            }
            if slot != 2 {
                assert!(
                    value["begin"].as_str() <= value["end"].as_str(),
                    "{}",
                    f.source()
                );
            }
        }
        // The folder holds reports of both kinds and broken files (tests/samples.rs lists them).
        assert!(kinds.iter().all(|k| *k > 0), "{kinds:?}");
    }
}
