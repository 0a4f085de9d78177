// HTTP header fields as views: HeaderField (name and value as string_views
// into the bytes a parser was given), the case-insensitive name comparison
// every lookup uses, and find_header over a list of them.
//
// Invariants: a HeaderField owns nothing; it is valid only as long as the
// buffer it points into (for a server request: until the handler returns).
// Names compare ASCII case-insensitively (RFC 9110 5.1); values are returned
// as received, without the surrounding whitespace (llhttp strips it).
//
// Rejected: a map from name to value (an allocation per header per request,
// and HTTP allows repeated names); lowercasing names in place (the bytes
// belong to the read buffer, and most lookups are for a handful of names in a
// short list, where a linear case-insensitive scan is cheapest).
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

namespace ringo::net::http {

struct HeaderField {
  std::string_view name;
  std::string_view value;
};

// ASCII case-insensitive equality (header names, methods' tokens, "chunked").
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x != y) {
      // Folding only letters: '@'|0x20 == '`' must not compare equal.
      x = (x >= 'A' && x <= 'Z') ? static_cast<char>(x | 0x20) : x;
      y = (y >= 'A' && y <= 'Z') ? static_cast<char>(y | 0x20) : y;
      if (x != y) return false;
    }
  }
  return true;
}

// The value of the first field named `name` (case-insensitive), if any.
inline std::optional<std::string_view> find_header(std::span<const HeaderField> fields, std::string_view name) {
  for (const HeaderField& f : fields) {
    if (iequals(f.name, name)) return f.value;
  }
  return std::nullopt;
}

}  // namespace ringo::net::http
