//! Fuzzes the job-file parser: any text must parse or give a JobError (exit
//! 2 in the CLI), never a panic; and no error may echo a secret's value.
#![no_main]

use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzz-secret-value-0451";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A file that spells the secret itself may see it quoted back (a TOML
    // error shows the line): only secrets read from the environment count.
    if text.contains(SECRET) {
        return;
    }
    let env = |_: &str| Some(SECRET.to_string());
    match unionsnap::job::parse(text, std::path::Path::new("jobs/fuzz.toml"), &env) {
        Ok(job) => assert!(!format!("{job:?}").contains(SECRET)),
        Err(error) => assert!(!error.to_string().contains(SECRET)),
    }
});
