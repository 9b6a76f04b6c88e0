#include "tls/x509_fields.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <string_view>

#include "core/hex.h"

namespace tlsfront::tls {
std::string lowercase_name(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string bio_contents(const BIO* bio) {
  const uint8_t* data = nullptr;
  size_t len = 0;
  BIO_mem_contents(bio, &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

std::string name_line(const X509_NAME* name) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) {
    ERR_clear_error();
    return {};
  }
  return bio_contents(bio.get());
}

bool posix_of(const ASN1_TIME* t, std::int64_t& out) {
  bssl::UniquePtr<ASN1_TIME> epoch(ASN1_TIME_set(nullptr, 0));
  int days = 0;
  int seconds = 0;
  if (!epoch || t == nullptr || ASN1_TIME_diff(&days, &seconds, epoch.get(), t) != 1) {
    ERR_clear_error();
    return false;
  }
  out = std::int64_t{days} * 86400 + seconds;
  return true;
}

std::string rfc3339(std::int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string sha256_hex(const X509* cert) {
  uint8_t digest[SHA256_DIGEST_LENGTH];
  unsigned digest_len = 0;
  if (X509_digest(cert, EVP_sha256(), digest, &digest_len) != 1) {
    ERR_clear_error();
    return {};
  }
  return core::to_hex(std::string_view(reinterpret_cast<const char*>(digest), digest_len));
}

std::string serial_hex(const X509* cert) {
  const ASN1_INTEGER* s = X509_get0_serialNumber(cert);
  if (s == nullptr) {
    return {};
  }
  return core::to_hex(std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                       static_cast<size_t>(ASN1_STRING_length(s))));
}

std::vector<std::string> dns_names(const X509* cert) {
  std::vector<std::string> out;
  bssl::UniquePtr<GENERAL_NAMES> sans(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  for (size_t i = 0; sans && i < sk_GENERAL_NAME_num(sans.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans.get(), i);
    if (gn->type == GEN_DNS) {
      const ASN1_STRING* s = gn->d.dNSName;
      out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                       static_cast<size_t>(ASN1_STRING_length(s)));
    }
  }
  ERR_clear_error();
  return out;
}

bool covers(const std::vector<std::string>& names, const std::string& server_name) {
  const std::string want = lowercase_name(server_name);
  return std::any_of(names.begin(), names.end(), [&](const std::string& n) {
    const std::string have = lowercase_name(n);
    if (have == want) {
      return true;
    }
    if (have.size() > 2 && have.compare(0, 2, "*.") == 0) {
      // A configured wildcard is covered only by the same wildcard (above); a concrete name by
      // a wildcard whose suffix follows its first label.
      const std::size_t dot = want.find('.');
      return want[0] != '*' && dot != std::string::npos && dot > 0 &&
             want.compare(dot, std::string::npos, have, 1, std::string::npos) == 0;
    }
    return false;
  });
}

}  // namespace tlsfront::tls
