#![allow(clippy::unwrap_used)]
use super::*;

const TYP: &str = "veil-test+jws";

/// RFC 8037 appendix A.1 key.
fn rfc_key() -> SigningKey {
    let seed: [u8; 32] = URL_SAFE_NO_PAD
        .decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
        .unwrap()
        .try_into()
        .unwrap();
    SigningKey::from_bytes(&seed)
}

fn keys() -> KeySet {
    KeySet::new().with("rfc8037", rfc_key().verifying_key())
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn matches_an_independent_signer() {
    // Produced with `openssl pkeyutl -sign -rawin` over the same signing input.
    let expected = "eyJhbGciOiJFZERTQSIsImtpZCI6InJmYzgwMzciLCJ0eXAiOiJ2ZWlsLXRlc3QrandzIn0.\
        eyJoZWxsbyI6IndvcmxkIiwibiI6MX0.\
        Yp4iBkTawmfKUW9ybAPZjwHRGwu7jAhbyhp8bVyObzDleIyBCxCqgmYpbwXe4KH2JqWwWyAfVEnQJOVaQPuXCw";
    let payload = json!({"hello": "world", "n": 1});
    assert_eq!(
        sign(&rfc_key(), "rfc8037", TYP, &payload).unwrap(),
        expected
    );
    assert_eq!(verify::<Value>(expected, TYP, &keys()).unwrap(), payload);
}

#[test]
fn rfc8037_public_key_and_thumbprint() {
    let public = rfc_key().verifying_key();
    assert_eq!(
        b64(public.as_bytes()),
        "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    );
    assert_eq!(
        jwk_thumbprint(&public),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );
}

#[test]
fn typed_payload_round_trips() {
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Receipt {
        id: String,
        granted: bool,
    }
    let receipt = Receipt {
        id: "r-1".into(),
        granted: true,
    };
    let token = sign(&rfc_key(), "rfc8037", TYP, &receipt).unwrap();
    assert_eq!(verify::<Receipt>(&token, TYP, &keys()).unwrap(), receipt);
    assert_eq!(
        verify::<Vec<u8>>(&token, TYP, &keys()),
        Err(JwsError::Payload)
    );
}

fn forged(header: &Value, payload: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload.to_string().as_bytes()),
        b64(signature)
    )
}

#[test]
fn rejects_wrong_alg_kid_typ_and_signature() {
    let payload = json!({"sub": "x"});
    let none = forged(
        &json!({"alg": "none", "kid": "rfc8037", "typ": TYP}),
        &payload,
        b"",
    );
    assert_eq!(
        verify::<Value>(&none, TYP, &keys()),
        Err(JwsError::Algorithm)
    );
    let hs = forged(
        &json!({"alg": "HS256", "kid": "rfc8037", "typ": TYP}),
        &payload,
        &[1; 32],
    );
    assert_eq!(verify::<Value>(&hs, TYP, &keys()), Err(JwsError::Algorithm));

    let token = sign(&rfc_key(), "rfc8037", TYP, &payload).unwrap();
    assert_eq!(
        verify::<Value>(&token, "other", &keys()),
        Err(JwsError::Type)
    );
    let unknown = sign(&rfc_key(), "other-kid", TYP, &payload).unwrap();
    assert_eq!(
        verify::<Value>(&unknown, TYP, &keys()),
        Err(JwsError::UnknownKey)
    );
    let no_kid = forged(&json!({"alg": "EdDSA", "typ": TYP}), &payload, &[0; 64]);
    assert_eq!(
        verify::<Value>(&no_kid, TYP, &keys()),
        Err(JwsError::UnknownKey)
    );

    let other_key = SigningKey::from_bytes(&[5; 32]);
    let wrong_key = sign(&other_key, "rfc8037", TYP, &payload).unwrap();
    assert_eq!(
        verify::<Value>(&wrong_key, TYP, &keys()),
        Err(JwsError::Signature)
    );

    let crit = forged(
        &json!({"alg": "EdDSA", "kid": "rfc8037", "typ": TYP, "crit": ["exp"]}),
        &payload,
        &[0; 64],
    );
    assert!(matches!(
        verify::<Value>(&crit, TYP, &keys()),
        Err(JwsError::Malformed(_))
    ));
}

#[test]
fn rejects_tampered_payload_and_signature() {
    let token = sign(&rfc_key(), "rfc8037", TYP, &json!({"role": "agent"})).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let swapped = format!("{}.{}.{}", parts[0], b64(br#"{"role":"admin"}"#), parts[2]);
    assert_eq!(
        verify::<Value>(&swapped, TYP, &keys()),
        Err(JwsError::Signature)
    );

    let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    signature[10] ^= 1;
    let flipped = format!("{}.{}.{}", parts[0], parts[1], b64(&signature));
    assert_eq!(
        verify::<Value>(&flipped, TYP, &keys()),
        Err(JwsError::Signature)
    );
    let short = format!("{}.{}.{}", parts[0], parts[1], b64(&signature[..63]));
    assert_eq!(
        verify::<Value>(&short, TYP, &keys()),
        Err(JwsError::Signature)
    );
}

#[test]
fn rejects_garbage_without_panicking() {
    let token = sign(&rfc_key(), "rfc8037", TYP, &json!({})).unwrap();
    let padded = format!("{token}=");
    let too_long = "a".repeat(MAX_TOKEN_LEN + 1);
    let cases = [
        "",
        ".",
        "..",
        "a.b",
        "a.b.c.d",
        "!!.!!.!!",
        "e30.e30.",
        "bm90IGpzb24.e30.AAAA",
        padded.as_str(),
        too_long.as_str(),
        &token[1..],
        &token[..token.len() - 1],
    ];
    for case in cases {
        assert!(verify::<Value>(case, TYP, &keys()).is_err(), "{case:?}");
    }
    let four = format!("{token}.AAAA");
    assert!(matches!(
        verify::<Value>(&four, TYP, &keys()),
        Err(JwsError::Malformed(_))
    ));
}

#[test]
fn jwks_round_trips_and_skips_foreign_keys() {
    let set = keys().with("k2", SigningKey::from_bytes(&[2; 32]).verifying_key());
    let jwks = set.to_jwks();
    assert_eq!(jwks["keys"][1]["kid"], "rfc8037");
    assert_eq!(
        jwks["keys"][1]["x"],
        "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    );
    assert_eq!(jwks["keys"][1]["kty"], "OKP");
    assert_eq!(KeySet::from_jwks(&jwks).unwrap(), set);

    let mixed = json!({"keys": [
        {"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB"},
        {"kty": "OKP", "crv": "Ed25519", "kid": "a", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
    ]});
    assert_eq!(KeySet::from_jwks(&mixed).unwrap().len(), 1);

    for bad in [
        json!({}),
        json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}),
        json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "a", "x": "AAAA"}]}),
    ] {
        assert!(matches!(KeySet::from_jwks(&bad), Err(JwsError::Jwks(_))));
    }
}
