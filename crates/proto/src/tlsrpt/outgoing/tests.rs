//! Tests of report building, names and the report mail.

use super::*;

#[test]
fn file_name_follows_rfc_8460_5_1() {
    assert_eq!(
        file_name(
            "mail.sender.example",
            "example.com",
            1_470_009_600,
            "a-1",
            true
        ),
        "mail.sender.example!example.com!1470009600!1470095999!a1.json.gz"
    );
}
