//! Fuzzes the WeChat response decoders: any status and body must end in a
//! value or a classified error, never a panic (Official Account, WeCom
//! customer groups, tags and datacube answers).
#![no_main]

use libfuzzer_sys::fuzz_target;
use unionsnap::wechat::decode;
use unionsnap::wechat::CallKind;

fuzz_target!(|data: &[u8]| {
    // The first two bytes pick the HTTP status (mostly 200), the rest is the body.
    let (status, body) = match data {
        [a, b, rest @ ..] => (
            if *a < 200 {
                200
            } else {
                100 + u16::from(*b) * 2
            },
            rest,
        ),
        _ => (200, data),
    };
    let (begin, end) = decode::doc_example_span();
    for result in [
        decode::user_get(status, body).map(|_| ()),
        decode::batchget(status, body).map(|_| ()),
        decode::quota(status, body).map(|_| ()),
        decode::token(status, body).map(|_| ()),
        decode::tags(status, body).map(|_| ()),
        decode::user_cumulate(status, body, begin, end).map(|_| ()),
        decode::user_summary(status, body, begin, end).map(|_| ()),
    ] {
        if let Err(error) = result {
            let _ = error.action(CallKind::DATA);
        }
    }
    for result in [
        decode::groupchat_list(status, body).map(|_| ()),
        decode::groupchat_get(status, body, "wrFUZZ").map(|_| ()),
    ] {
        if let Err(error) = result {
            let _ = error.action(CallKind::WECOM_DATA);
        }
    }
});
