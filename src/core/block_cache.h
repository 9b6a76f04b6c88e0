// core/block_cache.h — memory for the serving path without malloc in steady state: blocks of up
// to 32 KiB in power-of-two size classes, each freed block kept on the freeing thread's list for
// its class (bounded per class and thread; beyond the bound, and for larger blocks, malloc and
// free serve). A worker that allocates and frees the same shapes per request or connection (Asio
// coroutine frames, BoringSSL's record buffers and handshake state) reuses its own blocks.
//
// The tlsfront executable routes C++'s global operator new/delete (core/operator_new.cc) and
// BoringSSL's allocator hooks (tls/boringssl_memory.cc) here; libraries and tests use malloc.
//
// Thread-safety: every function may be called from any thread; the lists are thread_local and a
// block may be released on another thread than the one that allocated it (it joins that thread's
// list). At thread exit a thread's lists go back to free(). Ownership: release() takes a pointer
// from allocate() only.
// Failure: allocate() returns nullptr when malloc does.
#pragma once

#include <cstddef>

namespace tlsfront::core::block_cache {

void* allocate(std::size_t size) noexcept;
void release(void* p) noexcept;
// The size allocate() was asked for (0 for nullptr).
std::size_t size_of(const void* p) noexcept;

}  // namespace tlsfront::core::block_cache
