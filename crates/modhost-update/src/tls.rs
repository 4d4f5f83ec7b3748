//! Whom the client trusts: Mozilla's public roots, and a private CA only when told to.

use std::path::Path;

use ureq::tls::{Certificate, PemItem, RootCerts, parse_pem};

use crate::{Error, Result};

/// The public roots, plus every certificate of the PEM file `(path, contents)` when given.
pub(crate) fn roots(ca_cert: Option<(&Path, &[u8])>) -> Result<RootCerts> {
    let mut roots: Vec<Certificate<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|cert| Certificate::from_der(cert.as_ref()))
        .collect();
    if let Some((path, pem)) = ca_cert {
        let public = roots.len();
        for item in parse_pem(pem) {
            let item = item.map_err(|e| Error::File {
                path: path.to_owned(),
                message: format!("not a PEM file: {e}"),
            })?;
            if let PemItem::Certificate(cert) = item {
                roots.push(cert);
            }
        }
        if roots.len() == public {
            return Err(Error::File {
                path: path.to_owned(),
                message: "no PEM certificate in it".into(),
            });
        }
    }
    Ok(RootCerts::new_with_certs(&roots))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_pem() -> String {
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| panic!("{e}"));
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        rcgen::KeyPair::generate()
            .and_then(|key| params.self_signed(&key))
            .map(|cert| cert.pem())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn count(roots: &RootCerts) -> usize {
        match roots {
            RootCerts::Specific(certs) => certs.len(),
            other => panic!("expected a list of roots, got {other:?}"),
        }
    }

    #[test]
    fn a_ca_file_adds_every_certificate_in_it_to_the_public_roots() {
        let public = webpki_root_certs::TLS_SERVER_ROOT_CERTS.len();
        assert!(public > 100);
        let none = roots(None).map(|r| count(&r)).ok();
        assert_eq!(none, Some(public));
        let pem = format!("{}{}", ca_pem(), ca_pem());
        let path = Path::new("bundle.pem");
        let two = roots(Some((path, pem.as_bytes()))).map(|r| count(&r)).ok();
        assert_eq!(two, Some(public + 2));
        assert!(roots(Some((path, b"no certificate here"))).is_err());
    }
}
