#include "core/block_cache.h"

#include <cstdint>
#include <cstdlib>

namespace tlsfront::core::block_cache {
namespace {

constexpr std::size_t kMinShift = 5;   // 32-byte class
constexpr std::size_t kMaxShift = 15;  // 32 KiB class
constexpr std::size_t kClasses = kMaxShift - kMinShift + 1;
constexpr std::size_t kLarge = kClasses;                        // class of a malloc'd block
constexpr std::size_t kMaxListBytes = 2u << 20;                 // per class and thread
constexpr std::size_t kHeader = 2 * alignof(std::max_align_t);  // keeps the payload aligned

struct header {
  std::size_t size;   // as asked for
  std::size_t klass;  // size class, or kLarge
};
static_assert(sizeof(header) <= kHeader);

struct free_block {
  free_block* next;
};

std::size_t class_of(std::size_t size) noexcept {
  std::size_t k = 0;
  while ((std::size_t{1} << (k + kMinShift)) < size + kHeader) {
    ++k;
  }
  return k;
}

struct thread_lists {
  free_block* head[kClasses] = {};
  std::size_t count[kClasses] = {};
  ~thread_lists();
};

// True once this thread's lists were destroyed (thread exit): later calls use malloc/free.
thread_local bool lists_gone = false;
thread_local thread_lists lists;

thread_lists::~thread_lists() {
  lists_gone = true;
  for (std::size_t k = 0; k < kClasses; ++k) {
    while (free_block* b = head[k]) {
      head[k] = b->next;
      std::free(b);
    }
  }
}

void* payload(void* block, std::size_t size, std::size_t klass) noexcept {
  *static_cast<header*>(block) = header{size, klass};
  return static_cast<std::uint8_t*>(block) + kHeader;
}

const header& header_of(const void* p) noexcept {
  return *static_cast<const header*>(
      static_cast<const void*>(static_cast<const std::uint8_t*>(p) - kHeader));
}

}  // namespace

void* allocate(std::size_t size) noexcept {
  if (size > (std::size_t{1} << kMaxShift) - kHeader) {
    void* b = std::malloc(size + kHeader);
    return b == nullptr ? nullptr : payload(b, size, kLarge);
  }
  const std::size_t k = class_of(size);
  if (!lists_gone) {
    thread_lists& l = lists;
    if (free_block* b = l.head[k]) {
      l.head[k] = b->next;
      --l.count[k];
      return payload(b, size, k);
    }
  }
  void* b = std::malloc(std::size_t{1} << (k + kMinShift));
  return b == nullptr ? nullptr : payload(b, size, k);
}

void release(void* p) noexcept {
  if (p == nullptr) {
    return;
  }
  const std::size_t k = header_of(p).klass;
  void* block = static_cast<std::uint8_t*>(p) - kHeader;
  if (k == kLarge || lists_gone) {
    std::free(block);
    return;
  }
  thread_lists& l = lists;
  if ((l.count[k] + 1) << (k + kMinShift) > kMaxListBytes) {
    std::free(block);
    return;
  }
  auto* b = static_cast<free_block*>(block);
  b->next = l.head[k];
  l.head[k] = b;
  ++l.count[k];
}

std::size_t size_of(const void* p) noexcept {
  return p == nullptr ? 0 : header_of(p).size;
}

}  // namespace tlsfront::core::block_cache
