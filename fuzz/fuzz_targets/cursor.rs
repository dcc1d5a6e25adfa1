//! Page cursors as clients send them back (`_page` of a search or a history): any text through
//! the decoder; bodies of any shape signed with the right key (what a forged cursor would be
//! if the key leaked: the reader must still refuse or read it, never panic); what the encoder
//! writes, read back unchanged; and garbage cursors through the SQLite engine's search and
//! history, which must answer "bad cursor", never fail.

#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use phr_fuzz::{PATIENT, caller, check_answer, sqlite_service};
use phr_service::search::Scope;
use phr_store::sqlite::cursor;
use sha2::Sha256;

const KEY: &[u8] = b"fuzz cursor key, 32 bytes long!!";

fn signed(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut bytes = body.to_vec();
    bytes.extend(tag.iter().take(16));
    URL_SAFE_NO_PAD.encode(bytes)
}

// Shared state is built before the first input, outside the per-input timeout.
fuzz_target!(init: {
    phr_fuzz::sqlite_service();
}, |data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = match mode % 3 {
        0 => String::from_utf8_lossy(rest).into_owned(),
        // A version byte and a body of any shape, correctly signed.
        1 => signed(&[&[1u8][..], rest].concat()),
        _ => signed(rest),
    };
    if let Some(decoded) = cursor::decode(&text, KEY) {
        let again = cursor::encode(&decoded, KEY);
        let reread = cursor::decode(&again, KEY).map(|c| cursor::encode(&c, KEY));
        assert_eq!(reread.as_deref(), Some(again.as_str()), "an encoded cursor does not read back");
    }
    if mode & 0x80 != 0 {
        let fhir = sqlite_service();
        let params = [
            ("patient".to_owned(), PATIENT.to_owned()),
            ("_count".to_owned(), "1".to_owned()),
            ("_page".to_owned(), text.clone()),
        ];
        check_answer(&fhir.search(
            &caller(mode >> 3),
            Scope::of_type("Observation"),
            &params,
            false,
        ));
        let history = phr_store::HistoryQuery {
            resource_type: Some("Observation".into()),
            compartment: Some(PATIENT.into()),
            count: 1,
            page: Some(text),
            ..Default::default()
        };
        let answer = fhir.storage.history(&history);
        assert!(
            !matches!(answer, Err(phr_store::StoreError::Engine(_))),
            "a cursor made the engine fail: {answer:?}"
        );
    }
});
