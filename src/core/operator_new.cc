// core/operator_new.cc — the tlsfront executable's global operator new/delete, served by
// core::block_cache so that a worker's steady state (Asio coroutine frames, which Asio's own
// recycling cache keeps only up to about 1 KiB, request strings, parser vectors) calls no malloc.
// The over-aligned forms keep the standard library's definitions.
//
// Linked into the tlsfront executable only; left out under AddressSanitizer and ThreadSanitizer,
// which replace these operators themselves to check every allocation.
#include <cstddef>
#include <new>

#include "core/block_cache.h"

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)

namespace {

void* allocate_or_throw(std::size_t size) {
  for (;;) {
    if (void* p = tlsfront::core::block_cache::allocate(size == 0 ? 1 : size)) {
      return p;
    }
    std::new_handler h = std::get_new_handler();
    if (h == nullptr) {
      throw std::bad_alloc();
    }
    h();
  }
}

}  // namespace

void* operator new(std::size_t size) {
  return allocate_or_throw(size);
}
void* operator new[](std::size_t size) {
  return allocate_or_throw(size);
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return tlsfront::core::block_cache::allocate(size == 0 ? 1 : size);
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return tlsfront::core::block_cache::allocate(size == 0 ? 1 : size);
}
void operator delete(void* p) noexcept {
  tlsfront::core::block_cache::release(p);
}
void operator delete[](void* p) noexcept {
  tlsfront::core::block_cache::release(p);
}
void operator delete(void* p, std::size_t) noexcept {
  tlsfront::core::block_cache::release(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  tlsfront::core::block_cache::release(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  tlsfront::core::block_cache::release(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  tlsfront::core::block_cache::release(p);
}

#endif
