// tests/fuzz/ocsp_pki.h — the certificates ocsp_response_fuzz judges responses against: a CA
// ("fuzz CA") and its leaf ("fuzz leaf", serial 0x1001), valid 2026-12-03 to 2046, made with
// openssl once; the seeds in corpus/ocsp_response_fuzz are responses about them (by the CA,
// by a delegated responder, by key hash, about another certificate, about two) that
// `openssl ocsp -reqin ... -ndays 7000` made then. No key is kept: judging needs none.
#pragma once

namespace tlsfront::fuzz {

inline constexpr const char* ocsp_leaf_pem = R"(
-----BEGIN CERTIFICATE-----
MIIByDCCAW2gAwIBAgICEAEwCgYIKoZIzj0EAwIwEjEQMA4GA1UEAwwHZnV6eiBD
QTAeFw0yNjEyMDMxNDQ5NDVaFw00NjExMjgxNDQ5NDVaMBQxEjAQBgNVBAMMCWZ1
enogbGVhZjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABKgbKo7EIqSTrn7Ijh+R
rZdsfyl4PC/aE+mznCH2wtbnKmpHwwAY7vFKBGPh3Qs2nXQU+lZ4DxnoNltlrNS7
TyWjgbAwga0wDAYDVR0TAQH/BAIwADATBgNVHSUEDDAKBggrBgEFBQcDATAXBgNV
HREEEDAOggxmdXp6LmV4YW1wbGUwLwYIKwYBBQUHAQEEIzAhMB8GCCsGAQUFBzAB
hhNodHRwOi8vMTI3LjAuMC4xOjkvMB0GA1UdDgQWBBSUwSWVCrNVIUkWfozbZuIb
oJs+NjAfBgNVHSMEGDAWgBTJSdF0TFM0HhnaQn7fWbLR2wrnKDAKBggqhkjOPQQD
AgNJADBGAiEAmZm+YFodHsi2vm/znhSRGNP8xVV6kAnAKhPHSB7A9/ACIQDKDOGY
tIL0CrDGe7DHnv5SDHPkwxDh6x2/toI2SJciKQ==
-----END CERTIFICATE-----
)";

inline constexpr const char* ocsp_issuer_pem = R"(
-----BEGIN CERTIFICATE-----
MIIBVTCB+6ADAgECAgEBMAoGCCqGSM49BAMCMBIxEDAOBgNVBAMMB2Z1enogQ0Ew
HhcNMjYxMjAzMTQ0OTQ1WhcNNDYxMTI4MTQ0OTQ1WjASMRAwDgYDVQQDDAdmdXp6
IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEkPTBU4J7gpJX7pYcrnXE6aQn
9f4wLTDfqV+bTBWimYjJ1dnumCfHD781Urn9OQe+g86wQAdhRkTuBwtBtOxMKqNC
MEAwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAQYwHQYDVR0OBBYEFMlJ
0XRMUzQeGdpCft9ZstHbCucoMAoGCCqGSM49BAMCA0kAMEYCIQCLVKcb3jyH5iZU
e1IkCZ+iA1bt71xPse2pezmJfOsKmAIhAPwNjqhBzpqJlTBIdcaKTPsv20fXbPwk
BQz3cen8iZkj
-----END CERTIFICATE-----
)";

}  // namespace tlsfront::fuzz
