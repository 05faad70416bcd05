//! The demo server's built-in, deterministic fake data: a tiny document set and a customer
//! table. Everything here is invented; nothing is read from disk or the network.

/// One entry of the built-in document set searched by `search_docs`.
pub struct Doc {
    pub id: &'static str,
    pub title: &'static str,
    pub body: &'static str,
}

/// The built-in document set, in a fixed order so search results are deterministic.
pub const DOCS: &[Doc] = &[
    Doc {
        id: "handbook-001",
        title: "Refund policy",
        body: "Customers may request a refund within 30 days of purchase. Refunds are issued to the original payment method.",
    },
    Doc {
        id: "handbook-002",
        title: "Shipping times",
        body: "Standard shipping takes 3 to 5 business days. Express shipping takes 1 business day.",
    },
    Doc {
        id: "handbook-003",
        title: "Password reset",
        body: "To reset a password, open Settings, choose Security and follow the reset link sent by email.",
    },
    Doc {
        id: "handbook-004",
        title: "Support hours",
        body: "Support is available Monday to Friday, 09:00 to 17:00 UTC, by email and phone.",
    },
];

/// The handbook served as the `demo://docs/handbook` resource.
pub fn handbook() -> String {
    DOCS.iter()
        .map(|doc| format!("# {}\n\n{}\n", doc.title, doc.body))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Documents whose title or body contains every word of `query` (case-insensitive).
pub fn search(query: &str) -> Vec<&'static Doc> {
    let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    DOCS.iter()
        .filter(|doc| {
            let haystack = format!("{} {}", doc.title, doc.body).to_lowercase();
            words.iter().all(|word| haystack.contains(word.as_str()))
        })
        .collect()
}

/// A fake customer record returned by `lookup_customer`.
#[derive(serde::Serialize)]
pub struct Customer {
    pub customer_id: &'static str,
    pub name: &'static str,
    pub email: &'static str,
    pub phone: &'static str,
    pub plan: &'static str,
}

/// The fake customer table.
pub const CUSTOMERS: &[Customer] = &[
    Customer {
        customer_id: "C-1001",
        name: "Ada Lovelace",
        email: "ada@example.com",
        phone: "+44 20 7946 0001",
        plan: "enterprise",
    },
    Customer {
        customer_id: "C-1002",
        name: "Grace Hopper",
        email: "grace@example.com",
        phone: "+1 202 555 0102",
        plan: "team",
    },
    Customer {
        customer_id: "C-1003",
        name: "Alan Turing",
        email: "alan@example.com",
        phone: "+44 161 496 0003",
        plan: "free",
    },
];

/// The customer with this id, if any.
pub fn customer(customer_id: &str) -> Option<&'static Customer> {
    CUSTOMERS.iter().find(|c| c.customer_id == customer_id)
}

/// A deterministic message id for `send_message`: the same inputs always give the same id.
pub fn message_id(to: &str, body: &str) -> String {
    // FNV-1a: tiny, stable across platforms and releases (unlike `DefaultHasher`).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in to.bytes().chain([0]).chain(body.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("msg-{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_matches_every_word_case_insensitively() {
        let cases: &[(&str, &[&str])] = &[
            ("refund", &["handbook-001"]),
            ("SHIPPING days", &["handbook-002"]),
            ("email", &["handbook-003", "handbook-004"]),
            ("nothing-matches", &[]),
        ];
        for (query, expected) in cases {
            let ids: Vec<_> = search(query).iter().map(|d| d.id).collect();
            assert_eq!(&ids, expected, "query {query:?}");
        }
    }

    #[test]
    fn message_id_is_deterministic() {
        assert_eq!(message_id("a", "b"), message_id("a", "b"));
        assert_ne!(message_id("a", "b"), message_id("ab", ""));
    }
}
