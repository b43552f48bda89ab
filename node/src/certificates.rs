//! When the node's certificates expire, as a metric
//! (`artstore_tls_certificate_expiry_timestamp_seconds{cert}`, unix seconds), so that an alert
//! fires weeks before a certificate stops a node from talking to its peers or its clients.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// Publishes the expiry of the first certificate in the PEM file at `path` as `cert=kind`
/// (`api`, `cluster`, `ca`); a file that cannot be read or parsed is logged and left out.
pub fn publish_expiry(kind: &'static str, path: &Path) {
    let first = CertificateDer::pem_file_iter(path).ok().and_then(|mut certs| certs.next()).and_then(|c| c.ok());
    match first.as_deref().and_then(not_after) {
        Some(at) => {
            metrics::gauge!("artstore_tls_certificate_expiry_timestamp_seconds", "cert" => kind).set(at as f64);
            let days = (at - artstore_raft::now_ms() / 1000) / 86_400;
            if days < 30 {
                tracing::warn!(cert = kind, path = %path.display(), days, "certificate expires soon");
            } else {
                tracing::debug!(cert = kind, days, "certificate expiry published");
            }
        }
        None => tracing::warn!(cert = kind, path = %path.display(), "cannot read the expiry of this certificate"),
    }
}

/// The fields of an X.509 TBSCertificate after the version, in order.
#[derive(Clone, Copy)]
pub enum TbsField {
    Validity = 3,
    Subject = 4,
}

/// Reads one field of an X.509 certificate (DER): walks Certificate → TBSCertificate to `field`
/// with a DER reader that bounds every length by the input, hands it to `read`, and skips the
/// rest. `None` when the bytes are not a certificate or `read` finds nothing.
pub fn read_tbs_field<T>(
    der: &[u8],
    field: TbsField,
    read: impl FnOnce(yasna::BERReader) -> yasna::ASN1Result<Option<T>>,
) -> Option<T> {
    yasna::parse_der(der, |r| {
        r.read_sequence(|r| {
            let found = r.next().read_sequence(|tbs| {
                // version [0] EXPLICIT (absent in v1), serialNumber, signature, issuer, validity, subject.
                let first = tbs.next();
                let before = field as usize - usize::from(first.lookahead_tag()? != yasna::Tag::context(0));
                first.read_der()?;
                for _ in 0..before {
                    tbs.next().read_der()?;
                }
                let found = read(tbs.next())?;
                while tbs.read_optional(|r| r.read_der())?.is_some() {}
                Ok(found)
            })?;
            // signatureAlgorithm, signatureValue.
            r.next().read_der()?;
            r.next().read_der()?;
            Ok(found)
        })
    })
    .ok()
    .flatten()
}

/// The `notAfter` time of an X.509 certificate (DER) in unix seconds, or `None` when the bytes
/// are not a certificate.
pub fn not_after(der: &[u8]) -> Option<i64> {
    read_tbs_field(der, TbsField::Validity, |validity| {
        validity.read_sequence(|v| {
            v.next().read_der()?;
            let t = v.next().read_tagged_der()?;
            Ok(parse_time(t.tag(), t.value()))
        })
    })
}

/// UTCTime `YYMMDDHHMMSSZ` (years 1950–2049) or GeneralizedTime `YYYYMMDDHHMMSSZ`, as RFC 5280
/// requires them, in unix seconds.
fn parse_time(tag: yasna::Tag, value: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(value).ok()?.strip_suffix('Z')?;
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |s: &str| s.parse::<i64>().ok();
    let (year, rest) = if tag == yasna::tags::TAG_UTCTIME && text.len() == 12 {
        let yy = num(&text[..2])?;
        (if yy < 50 { 2000 + yy } else { 1900 + yy }, &text[2..])
    } else if tag == yasna::tags::TAG_GENERALIZEDTIME && text.len() == 14 {
        (num(&text[..4])?, &text[4..])
    } else {
        return None;
    };
    let (month, day, hour, min, sec) =
        (num(&rest[..2])?, num(&rest[2..4])?, num(&rest[4..6])?, num(&rest[6..8])?, num(&rest[8..10])?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expiry_of_a_cluster_certificate_is_read() {
        let ca = artstore_cluster_config::ClusterCa::generate("expiry-test").unwrap();
        let der = CertificateDer::from_pem_slice(ca.cert_pem.as_bytes()).unwrap();
        // Cluster certificates are issued until 2124-01-01.
        assert_eq!(not_after(&der), Some(days_from_civil(2124, 1, 1) * 86_400));
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(parse_time(yasna::tags::TAG_UTCTIME, b"491231235959Z"), Some(2_524_607_999));
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            /// Whatever bytes a certificate file holds: a time or `None`, never a panic.
            #[test]
            fn arbitrary_certificates_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
                let _ = not_after(&bytes);
            }

            #[test]
            fn arbitrary_times_never_panic(text in "[0-9Z]{0,16}", utc in any::<bool>()) {
                let tag = if utc { yasna::tags::TAG_UTCTIME } else { yasna::tags::TAG_GENERALIZEDTIME };
                let _ = parse_time(tag, text.as_bytes());
            }
        }
    }
}
