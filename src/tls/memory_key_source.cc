#include "tls/memory_key_source.h"

namespace tlsfront::tls {

bool memory_key_source::start(std::string&) {
  ring_.seed();
  return true;
}

void memory_key_source::maintain() {
  ring_.schedule(true, false);
}

bool memory_key_source::rotate_now(std::string&, bool& fleet) {
  fleet = false;
  ring_.add_next_key();
  return true;
}

const char* memory_key_source::no_files_error() noexcept {
  return "ticket keys are generated in memory: there are no files to reload";
}

bool memory_key_source::reload(std::string& error) {
  error = no_files_error();
  return false;
}

std::string memory_key_source::purge(bool, std::uint64_t) {
  ring_.seed();
  return "replaced";
}

}  // namespace tlsfront::tls
