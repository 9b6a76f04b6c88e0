#include "tls/certificate.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "tls/ssl_error.h"
#include "tls/x509_fields.h"

namespace tlsfront::tls {
namespace {

template <class T, class Read>
bool read_pem_until_end(FILE* f, Read read, std::vector<bssl::UniquePtr<T>>& out,
                        const std::string& what, std::string& error) {
  for (;;) {
    bssl::UniquePtr<T> item(read(f, nullptr, nullptr, nullptr));
    if (!item) {
      // End of file reads as PEM_R_NO_START_LINE; anything else is a damaged object.
      uint32_t err = ERR_peek_last_error();
      if (ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE) {
        ERR_clear_error();
        return true;
      }
      error = what + ": " + take_ssl_error();
      return false;
    }
    out.push_back(std::move(item));
  }
}

struct openssl_deleter {
  void operator()(void* p) const { OPENSSL_free(p); }
};

// The fields every loaded certificate carries besides its objects.
void describe(loaded_certificate& c) {
  c.names = dns_names(c.leaf.get());
  c.sha256 = sha256_hex(c.leaf.get());
  if (!posix_of(X509_get0_notBefore(c.leaf.get()), c.not_before)) {
    c.not_before = 0;
  }
  if (!posix_of(X509_get0_notAfter(c.leaf.get()), c.not_after)) {
    c.not_after = 0;
  }
}

bool is_private_key_block(std::string_view name) {
  return name == "PRIVATE KEY" || name == "RSA PRIVATE KEY" || name == "EC PRIVATE KEY";
}

// One certificate's place in an error: "the leaf" or "chain certificate 2 (CN=...)".
std::string which(std::size_t i, const X509* c) {
  const std::string subject = name_line(X509_get_subject_name(c));
  return (i == 0 ? std::string("the leaf") : "chain certificate " + std::to_string(i)) + " (" +
         (subject.empty() ? std::string("no subject") : subject) + ")";
}

}  // namespace

bool valid_certificate_name(std::string_view n) noexcept {
  return !n.empty() && n.size() <= 64 && n[0] != '.' && n[0] != '-' &&
         std::all_of(n.begin(), n.end(), [](unsigned char c) {
           return std::isalnum(c) != 0 || c == '.' || c == '_' || c == '-';
         });
}

const char* certificate_source_name(certificate_options::source_kind s) noexcept {
  switch (s) {
    case certificate_options::source_kind::config:
      return "config";
    case certificate_options::source_kind::certificate_dir:
      return "certificate_dir";
    case certificate_options::source_kind::admin:
      return "admin";
  }
  return "config";
}

bool open_file(const std::string& path, file_ptr& out, std::string& error) {
  out.reset(std::fopen(path.c_str(), "rb"));
  if (!out) {
    error = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

bool read_pem_certificates(FILE* f, std::vector<bssl::UniquePtr<X509>>& out,
                           const std::string& what, std::string& error) {
  return read_pem_until_end<X509>(f, &PEM_read_X509, out, what, error);
}

bool read_pem_crls(FILE* f, std::vector<bssl::UniquePtr<X509_CRL>>& out, const std::string& what,
                   std::string& error) {
  return read_pem_until_end<X509_CRL>(f, &PEM_read_X509_CRL, out, what, error);
}

bool load_certificate(const certificate_options& opts, loaded_certificate& out, std::string& error,
                      certificate_part* part) {
  ERR_clear_error();
  certificate_part ignored;
  certificate_part& at = part != nullptr ? *part : ignored;
  at = certificate_part::cert;
  file_ptr f;
  if (!open_file(opts.cert_file, f, error)) {
    return false;
  }
  out.leaf.reset(PEM_read_X509(f.get(), nullptr, nullptr, nullptr));
  if (!out.leaf) {
    error = "no PEM certificate in " + opts.cert_file + ": " + take_ssl_error();
    return false;
  }
  out.chain.clear();
  if (!read_pem_certificates(f.get(), out.chain, "bad certificate in chain of " + opts.cert_file,
                             error)) {
    return false;
  }

  at = certificate_part::key;
  file_ptr k;
  if (!open_file(opts.key_file, k, error)) {
    return false;
  }
  out.key.reset(PEM_read_PrivateKey(k.get(), nullptr, nullptr, nullptr));
  if (!out.key) {
    error = "no PEM private key in " + opts.key_file + ": " + take_ssl_error();
    return false;
  }
  if (X509_check_private_key(out.leaf.get(), out.key.get()) != 1) {
    take_ssl_error();
    error =
        "private key in " + opts.key_file + " does not match the certificate in " + opts.cert_file;
    return false;
  }

  describe(out);
  ERR_clear_error();
  return true;
}

bool parse_certificate_pem(std::string_view pem, const std::string& what, loaded_certificate& out,
                           std::string& error) {
  ERR_clear_error();
  out = loaded_certificate{};
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), pem.size()));
  if (!bio) {
    error = "out of memory";
    return false;
  }
  std::size_t keys = 0;
  std::size_t blocks = 0;
  for (;;) {
    char* name_raw = nullptr;
    char* header_raw = nullptr;
    uint8_t* data_raw = nullptr;
    long len = 0;
    if (PEM_read_bio(bio.get(), &name_raw, &header_raw, &data_raw, &len) != 1) {
      const uint32_t err = ERR_peek_last_error();
      const bool at_end =
          ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE;
      if (!at_end) {
        error = "damaged PEM block in " + what + ": " + take_ssl_error();
        return false;
      }
      ERR_clear_error();
      break;
    }
    const std::unique_ptr<char, openssl_deleter> name(name_raw);
    const std::unique_ptr<char, openssl_deleter> header(header_raw);
    const std::unique_ptr<uint8_t, openssl_deleter> data(data_raw);
    ++blocks;
    const std::string_view kind(name.get());
    const uint8_t* p = data.get();
    if (kind == "CERTIFICATE") {
      bssl::UniquePtr<X509> cert(d2i_X509(nullptr, &p, len));
      if (!cert || p != data.get() + len) {
        error = "certificate " + std::to_string(out.chain.size() + (out.leaf ? 2 : 1)) + " in " +
                what + " is not valid DER: " + take_ssl_error();
        return false;
      }
      if (!out.leaf) {
        out.leaf = std::move(cert);
      } else {
        out.chain.push_back(std::move(cert));
      }
    } else if (kind == "ENCRYPTED PRIVATE KEY" ||
               (is_private_key_block(kind) && header.get()[0] != '\0')) {
      error = "the private key in " + what +
              " is encrypted: send it unencrypted (tlsfront keeps no passphrases)";
      return false;
    } else if (is_private_key_block(kind)) {
      if (++keys > 1) {
        error = what + " holds more than one private key";
        return false;
      }
      // PKCS#8 ("PRIVATE KEY") or the traditional RSA/EC forms.
      out.key.reset(d2i_AutoPrivateKey(nullptr, &p, len));
      if (!out.key || p != data.get() + len) {
        error = "the private key in " + what + " cannot be read: " + take_ssl_error();
        out.key.reset();
        return false;
      }
    } else {
      error = what + " holds a PEM block of kind \"" + std::string(kind) +
              "\": only CERTIFICATE blocks and one private key are accepted";
      return false;
    }
  }
  if (blocks == 0) {
    error = "no PEM block in " + what;
    return false;
  }
  if (!out.leaf) {
    error = "no certificate in " + what;
    return false;
  }
  if (!out.key) {
    error = "no private key in " + what;
    return false;
  }
  if (X509_check_private_key(out.leaf.get(), out.key.get()) != 1) {
    take_ssl_error();
    error = "the private key in " + what + " does not match its first certificate";
    return false;
  }
  describe(out);
  ERR_clear_error();
  return true;
}

bool check_certificate_chain(const loaded_certificate& c, std::int64_t now, std::string& error) {
  std::vector<const X509*> all{c.leaf.get()};
  for (const auto& x : c.chain) {
    all.push_back(x.get());
  }
  for (std::size_t i = 0; i < all.size(); ++i) {
    X509* x = const_cast<X509*>(all[i]);
    std::int64_t from = 0;
    std::int64_t until = 0;
    if (!posix_of(X509_get0_notBefore(x), from) || !posix_of(X509_get0_notAfter(x), until)) {
      error = which(i, x) + " has an unreadable validity period";
      return false;
    }
    if (until <= now) {
      error = which(i, x) + " expired at " + rfc3339(until);
      return false;
    }
    if (from > now) {
      error = which(i, x) + " is not valid before " + rfc3339(from);
      return false;
    }
    if (i + 1 < all.size()) {
      X509* issuer = const_cast<X509*>(all[i + 1]);
      bssl::UniquePtr<EVP_PKEY> issuer_key(X509_get_pubkey(issuer));
      if (X509_check_issued(issuer, x) != X509_V_OK || !issuer_key ||
          X509_verify(x, issuer_key.get()) != 1) {
        ERR_clear_error();
        error = which(i, x) + " was not issued by the certificate after it, " +
                which(i + 1, issuer) +
                ": the chain must go from the leaf up, each followed by "
                "its issuer";
        return false;
      }
    }
  }
  ERR_clear_error();
  return true;
}

std::string certificate_pem(const loaded_certificate& c) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  bool ok = bio && PEM_write_bio_X509(bio.get(), c.leaf.get()) == 1;
  for (const auto& x : c.chain) {
    ok = ok && PEM_write_bio_X509(bio.get(), x.get()) == 1;
  }
  ok = ok &&
       PEM_write_bio_PrivateKey(bio.get(), c.key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1;
  if (!ok) {
    ERR_clear_error();
    return {};
  }
  return bio_contents(bio.get());
}

std::string certificate_file_path(const std::string& dir, const std::string& name) {
  return dir + "/" + name + ".pem";
}

bool write_certificate_file(const std::string& dir, const std::string& name, const std::string& pem,
                            std::string& error) {
  const std::string path = certificate_file_path(dir, name);
  const std::string tmp = dir + "/." + name + ".pem.tmp";
  auto fail = [&](const std::string& step) {
    error = "cannot " + step + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return false;
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return fail("create " + tmp);
  }
  std::size_t done = 0;
  while (done < pem.size()) {
    const ssize_t n = ::write(fd, pem.data() + done, pem.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      const int saved = errno;
      ::close(fd);
      errno = saved;
      return fail("write " + tmp);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int saved = errno;
    ::close(fd);
    errno = saved;
    return fail("flush " + tmp);
  }
  if (::close(fd) != 0) {
    return fail("close " + tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return fail("rename " + tmp + " to " + path);
  }
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);  // the rename itself; the new file is whole either way
    ::close(dfd);
  }
  return true;
}

}  // namespace tlsfront::tls

namespace tlsfront::tls {

bool check_cipher_list(const std::string& ciphers, std::string& error) {
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  if (!ctx || SSL_CTX_set_strict_cipher_list(ctx.get(), ciphers.c_str()) != 1) {
    error = "cipher list \"" + ciphers + "\" refused: " + take_ssl_error();
    return false;
  }
  return true;
}

bool check_curves_list(const std::string& curves, std::string& error) {
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  if (!ctx || SSL_CTX_set1_curves_list(ctx.get(), curves.c_str()) != 1) {
    ERR_clear_error();
    error = "curves list \"" + curves +
            "\" refused: use names from X25519, P-256, P-384, P-521, separated by ':'";
    return false;
  }
  return true;
}

}  // namespace tlsfront::tls
