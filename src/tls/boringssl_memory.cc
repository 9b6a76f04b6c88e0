// tls/boringssl_memory.cc — BoringSSL's memory from core::block_cache instead of malloc.
//
// BoringSSL frees a connection's record buffers whenever they are empty, so each keep-alive
// request costs a malloc/free pair for the read buffer and another for the write buffer, and a
// resumed handshake a hundred more (the SSL, its handshake state, the session). libcrypto lets a
// program supply its allocator through the weak symbols OPENSSL_memory_alloc / _free / _get_size
// (crypto/mem.c); this file defines them over the per-thread block cache.
//
// BoringSSL's own free() wipes every block (OPENSSL_cleanse) before releasing it; so does this
// one, so no secret outlives its owner in a recycled block.
//
// Linked into the tlsfront executable only (the dynamic linker then binds libcrypto's weak
// references to these definitions); left out under AddressSanitizer and ThreadSanitizer, which
// must see every allocation.
#include <openssl/mem.h>

#include <cstddef>

#include "core/block_cache.h"

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)

extern "C" {

void* OPENSSL_memory_alloc(std::size_t size) {
  return tlsfront::core::block_cache::allocate(size);
}

void OPENSSL_memory_free(void* ptr) {
  if (ptr != nullptr) {
    OPENSSL_cleanse(ptr, tlsfront::core::block_cache::size_of(ptr));
    tlsfront::core::block_cache::release(ptr);
  }
}

std::size_t OPENSSL_memory_get_size(void* ptr) {
  return tlsfront::core::block_cache::size_of(ptr);
}

}  // extern "C"

#endif
