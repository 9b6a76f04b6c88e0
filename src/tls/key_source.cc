#include "tls/key_source.h"

#include "tls/file_key_source.h"
#include "tls/memory_key_source.h"

namespace tlsfront::tls {

// The one place that turns the configured source kind into behaviour.
std::unique_ptr<key_source> make_local_key_source(ticket_key_ring& ring) {
  switch (ring.options().source) {
    case ticket_key_options::source_kind::memory:
      return std::make_unique<memory_key_source>(ring);
    case ticket_key_options::source_kind::file:
      return std::make_unique<file_key_source>(ring);
    case ticket_key_options::source_kind::fleet:
      return nullptr;
  }
  return nullptr;
}

}  // namespace tlsfront::tls
