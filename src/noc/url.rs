//! Percent-encoding of the pages' links (site names and Call-IDs carry `@`, `/`, spaces).

/// A path or query part as it arrived → text.
pub fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// Text → a path or query part.
pub fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_survive_a_round_trip_through_a_link() {
        let id = "a84b4c76e66710@pc33.atlanta.example.com/x y+z";
        assert_eq!(decode(&encode(id)), id);
    }
}
