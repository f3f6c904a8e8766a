//! Dotted version comparison, as the agent does it.

use std::cmp::Ordering;

/// Compares two dotted versions component by component, the way the agent
/// compares ClientVersion with its cut-offs (`ssm.md` §2.7,
/// `tunnel-peers.md` §2):
/// - surrounding whitespace is ignored;
/// - components are compared numerically when both are non-empty runs of
///   ASCII digits (of any length: `"0010"` equals `"10"`), and as text
///   otherwise, so that any string has a place in the order;
/// - a version with fewer components is padded with `0` components (the
///   agent's rule: `3.1` equals `3.1.0.0`).
///
/// The plugin instead answers "not supported" when the component counts
/// differ. Padding is chosen because the agent is the side that decides the
/// port mode from our ClientVersion, and because every AgentVersion the
/// agent sends has four components, where both rules agree.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let a: Vec<&str> = a.trim().split('.').collect();
    let b: Vec<&str> = b.trim().split('.').collect();
    let len = a.len().max(b.len());
    (0..len)
        .map(|i| {
            let x = a.get(i).copied().unwrap_or("0");
            let y = b.get(i).copied().unwrap_or("0");
            compare_component(x, y)
        })
        .find(|ordering| ordering.is_ne())
        .unwrap_or(Ordering::Equal)
}

fn is_numeric(component: &str) -> bool {
    !component.is_empty() && component.bytes().all(|b| b.is_ascii_digit())
}

fn compare_component(x: &str, y: &str) -> Ordering {
    if is_numeric(x) && is_numeric(y) {
        let x = strip_zeros(x);
        let y = strip_zeros(y);
        x.len().cmp(&y.len()).then_with(|| x.cmp(y))
    } else {
        x.cmp(y)
    }
}

fn strip_zeros(digits: &str) -> &str {
    let stripped = digits.trim_start_matches('0');
    if stripped.is_empty() { "0" } else { stripped }
}

/// Whether `version` is dotted numeric: non-empty ASCII digit runs joined
/// by dots, e.g. `1.2.694.0`. The agent falls back to text comparison
/// otherwise, where e.g. `x/0.1.0` lands in mux mode by accident, so the
/// ClientVersion we report must pass this check.
pub fn is_dotted_numeric(version: &str) -> bool {
    version.split('.').all(is_numeric)
}
