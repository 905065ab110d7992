//! Bench guest: CPU-bound work (mixing a 64 KiB buffer, memory loads and stores
//! included) inside `describe`, to measure what fuel metering costs.

fn mix() -> String {
    let mut words = vec![0u64; 8192];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for round in 0..1_200u64 {
        for (i, word) in words.iter_mut().enumerate() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *word = word.rotate_left(5) ^ state.wrapping_add(round * i as u64);
        }
    }
    // The result is returned, so none of the work can be optimised away.
    format!("mixed {:016x}", words.iter().fold(0u64, |acc, w| acc ^ w))
}

graphmig_sdk::migration! { description: &mix(), up: up }

fn up(_ctx: &graphmig_sdk::Context) -> graphmig_sdk::Result<()> {
    Ok(())
}
