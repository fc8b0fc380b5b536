#include "kafka_llm/features/json_schema.hpp"

#include <re2/re2.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kafka_llm/format/utf8.hpp"

namespace kafka_llm::features {

using nlohmann::json;

// Everything but CompiledSchema (named in the header) has internal linkage.
namespace {

using NodeId = std::uint32_t;

// A JSON number kept in the representation it was parsed in, so that large integers compare exactly.
struct Number {
  enum class Kind : std::uint8_t { kSigned, kUnsigned, kFloat };
  Kind kind = Kind::kSigned;
  std::int64_t signed_value = 0;
  std::uint64_t unsigned_value = 0;
  double float_value = 0;
};

// A numeric bound of a schema and its text for messages.
struct Bound {
  Number value;
  std::string text;
};

struct Pattern {
  std::string source;
  std::unique_ptr<re2::RE2> regex;
};

enum TypeBit : std::uint8_t {
  kNullBit = 1U << 0U,
  kBooleanBit = 1U << 1U,
  kObjectBit = 1U << 2U,
  kArrayBit = 1U << 3U,
  kNumberBit = 1U << 4U,
  kIntegerBit = 1U << 5U,
  kStringBit = 1U << 6U,
};
constexpr std::uint8_t kAllTypes = 0x7FU;

struct Node {
  bool reject_all = false;  // the schema `false`
  std::uint8_t types = kAllTypes;

  std::optional<json> const_value;
  bool has_enum = false;
  std::vector<json> enum_values;
  std::string enum_text;

  bool has_number_rules = false;
  std::optional<Bound> minimum;
  std::optional<Bound> maximum;
  std::optional<Bound> exclusive_minimum;
  std::optional<Bound> exclusive_maximum;
  std::optional<Bound> multiple_of;

  bool has_string_rules = false;
  std::optional<std::uint64_t> min_length;
  std::optional<std::uint64_t> max_length;
  std::optional<std::size_t> pattern;

  bool has_array_rules = false;
  std::vector<NodeId> prefix_items;
  std::optional<NodeId> items;  // every item after prefix_items
  std::optional<std::uint64_t> min_items;
  std::optional<std::uint64_t> max_items;
  bool unique_items = false;
  std::optional<NodeId> contains;
  std::optional<std::uint64_t> min_contains;
  std::optional<std::uint64_t> max_contains;

  bool has_object_rules = false;
  std::vector<std::pair<std::string, NodeId>> properties;  // sorted by name
  std::vector<std::string> required;
  std::vector<std::pair<std::size_t, NodeId>> pattern_properties;
  std::optional<NodeId> additional_properties;
  std::optional<NodeId> property_names;
  std::optional<std::uint64_t> min_properties;
  std::optional<std::uint64_t> max_properties;

  std::optional<NodeId> ref;
  std::vector<NodeId> all_of;
  std::vector<NodeId> any_of;
  std::vector<NodeId> one_of;
  std::optional<NodeId> not_schema;
  std::optional<NodeId> if_schema;
  std::optional<NodeId> then_schema;
  std::optional<NodeId> else_schema;
};

}  // namespace

namespace detail {

struct CompiledSchema {
  std::vector<Node> nodes;
  std::vector<Pattern> patterns;
  NodeId root = 0;
};

}  // namespace detail

namespace {

using detail::CompiledSchema;

// Bounds the nesting of validate()'s own calls (instance depth times the in-place chain of $ref,
// allOf, … at each level), so a long chain of references cannot exhaust a thread's stack.
constexpr std::size_t kMaxEvaluationDepth = 1024;
constexpr std::size_t kMaxQuotedValueBytes = 64;
constexpr std::size_t kMaxQuotedListBytes = 200;
constexpr std::size_t kMaxBranchReasonBytes = 240;
constexpr std::size_t kMaxReasonBytes = 960;

// ---------------------------------------------------------------------------------------------
// Numbers and JSON equality

Number to_number(const json& value) {
  Number n;
  if (value.is_number_unsigned()) {
    n.kind = Number::Kind::kUnsigned;
    n.unsigned_value = value.get<std::uint64_t>();
  } else if (value.is_number_integer()) {
    n.kind = Number::Kind::kSigned;
    n.signed_value = value.get<std::int64_t>();
  } else {
    n.kind = Number::Kind::kFloat;
    n.float_value = value.get<double>();
  }
  return n;
}

double as_double(const Number& n) {
  switch (n.kind) {
    case Number::Kind::kSigned:
      return static_cast<double>(n.signed_value);
    case Number::Kind::kUnsigned:
      return static_cast<double>(n.unsigned_value);
    case Number::Kind::kFloat:
      break;
  }
  return n.float_value;
}

constexpr double kTwoPow63 = 9223372036854775808.0;
constexpr double kTwoPow64 = 18446744073709551616.0;

int sign_of(double difference) {
  return difference < 0 ? -1 : (difference > 0 ? 1 : 0);
}

// Exact comparison of an integer with a double: compare with floor(d), then the fraction.
int compare_signed_float(std::int64_t i, double d) {
  if (std::isnan(d)) return -1;  // NaN (only from programmatic JSON) sorts last
  if (d >= kTwoPow63) return -1;
  if (d < -kTwoPow63) return 1;
  const double whole = std::floor(d);
  const auto whole_int = static_cast<std::int64_t>(whole);
  if (i != whole_int) return i < whole_int ? -1 : 1;
  return d > whole ? -1 : 0;
}

int compare_unsigned_float(std::uint64_t u, double d) {
  if (std::isnan(d)) return -1;
  if (d < 0) return 1;
  if (d >= kTwoPow64) return -1;
  const double whole = std::floor(d);
  const auto whole_int = static_cast<std::uint64_t>(whole);
  if (u != whole_int) return u < whole_int ? -1 : 1;
  return d > whole ? -1 : 0;
}

int compare_numbers(const Number& a, const Number& b) {
  using Kind = Number::Kind;
  if (a.kind == Kind::kFloat && b.kind == Kind::kFloat) {
    const bool a_nan = std::isnan(a.float_value);
    const bool b_nan = std::isnan(b.float_value);
    if (a_nan || b_nan) return static_cast<int>(a_nan) - static_cast<int>(b_nan);
    return sign_of(a.float_value - b.float_value);
  }
  if (a.kind == Kind::kFloat) return -compare_numbers(b, a);
  if (b.kind == Kind::kFloat) {
    return a.kind == Kind::kSigned ? compare_signed_float(a.signed_value, b.float_value)
                                   : compare_unsigned_float(a.unsigned_value, b.float_value);
  }
  if (a.kind == Kind::kSigned && b.kind == Kind::kSigned) {
    return a.signed_value < b.signed_value ? -1 : (a.signed_value > b.signed_value ? 1 : 0);
  }
  if (a.kind == Kind::kUnsigned && b.kind == Kind::kUnsigned) {
    return a.unsigned_value < b.unsigned_value ? -1 : (a.unsigned_value > b.unsigned_value ? 1 : 0);
  }
  if (a.kind == Kind::kSigned) {
    if (a.signed_value < 0) return -1;
    const auto a_unsigned = static_cast<std::uint64_t>(a.signed_value);
    return a_unsigned < b.unsigned_value ? -1 : (a_unsigned > b.unsigned_value ? 1 : 0);
  }
  return -compare_numbers(b, a);
}

bool is_integral(const json& value) {
  if (value.is_number_integer()) return true;  // signed and unsigned
  const double d = value.get<double>();
  return std::isfinite(d) && std::floor(d) == d;
}

std::uint64_t magnitude(const Number& n) {
  if (n.kind == Number::Kind::kUnsigned) return n.unsigned_value;
  if (n.signed_value >= 0) return static_cast<std::uint64_t>(n.signed_value);
  return static_cast<std::uint64_t>(-(n.signed_value + 1)) + 1U;  // no overflow at INT64_MIN
}

bool is_multiple_of(const Number& x, const Number& divisor) {
  if (x.kind != Number::Kind::kFloat) {
    // Integers: exact arithmetic whenever the divisor is a whole number too.
    if (divisor.kind != Number::Kind::kFloat) return magnitude(x) % magnitude(divisor) == 0;
    const double d = divisor.float_value;
    if (std::floor(d) == d) {
      if (d >= kTwoPow64) return magnitude(x) == 0;
      return magnitude(x) % static_cast<std::uint64_t>(d) == 0;
    }
  }
  const double xd = as_double(x);
  if (xd == 0) return true;
  const double quotient = xd / as_double(divisor);
  if (!std::isfinite(quotient)) return false;
  // Decimal divisors such as 0.01 are not exact in binary: accept a quotient within a few ulps of a
  // whole number.
  const double error = std::abs(quotient - std::round(quotient));
  return error <= 8 * std::numeric_limits<double>::epsilon() * std::max(1.0, std::abs(quotient));
}

int type_rank(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return 0;
    case json::value_t::boolean:
      return 1;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return 2;
    case json::value_t::string:
      return 3;
    case json::value_t::array:
      return 4;
    case json::value_t::object:
      return 5;
    case json::value_t::binary:
    case json::value_t::discarded:
      break;
  }
  return 6;
}

// A total order whose equality is JSON Schema equality (1 equals 1.0; object member order does not
// matter). Below `budget` levels, subtrees compare equal and `too_deep` is set, which keeps the order
// consistent while the caller reports the nesting.
int compare_json(const json& a, const json& b, std::size_t budget, bool& too_deep) {
  const int rank_a = type_rank(a);
  const int rank_b = type_rank(b);
  if (rank_a != rank_b) return rank_a < rank_b ? -1 : 1;
  switch (a.type()) {
    case json::value_t::null:
      return 0;
    case json::value_t::boolean:
      return static_cast<int>(a.get<bool>()) - static_cast<int>(b.get<bool>());
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return compare_numbers(to_number(a), to_number(b));
    case json::value_t::string: {
      const int c = a.get_ref<const std::string&>().compare(b.get_ref<const std::string&>());
      return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    case json::value_t::array:
    case json::value_t::object:
      break;
    case json::value_t::binary:
    case json::value_t::discarded:
      return 0;
  }
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  if (a.empty()) return 0;
  if (budget == 0) {
    too_deep = true;
    return 0;
  }
  if (a.is_array()) {
    for (std::size_t k = 0; k < a.size(); ++k) {
      const int c = compare_json(a[k], b[k], budget - 1, too_deep);
      if (c != 0) return c;
    }
    return 0;
  }
  // Objects iterate in key order, so equal sizes pair members up by position.
  for (auto left = a.begin(), right = b.begin(); left != a.end(); ++left, ++right) {
    const int key_order = left.key().compare(right.key());
    if (key_order != 0) return key_order < 0 ? -1 : 1;
    const int c = compare_json(left.value(), right.value(), budget - 1, too_deep);
    if (c != 0) return c;
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Text for messages

std::string shorten(std::string text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  std::string out(format::truncate_utf8(text, max_bytes));
  out += "\xE2\x80\xA6";  // …
  return out;
}

std::string dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string_view type_name(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return "number";
    case json::value_t::string:
      return "string";
    case json::value_t::array:
      return "array";
    case json::value_t::object:
      return "object";
    case json::value_t::binary:
    case json::value_t::discarded:
      break;
  }
  return "unknown";
}

// A string as a JSON string literal, cut to a readable length.
std::string quote(std::string_view text) {
  if (text.size() <= kMaxQuotedValueBytes) return dump(json(std::string(text)));
  std::string prefix(format::truncate_utf8(text, kMaxQuotedValueBytes));
  prefix += "\xE2\x80\xA6";
  return dump(json(prefix));
}

// Appends `value` as compact JSON, stopping before an array item or object member once `out` holds
// `limit` bytes; returns false when it stopped early. Every nesting level writes at least one byte
// before recursing, so the recursion is bounded by `limit`. Strings are cut by quote().
bool append_bounded(std::string& out, const json& value, std::size_t limit) {
  if (value.is_string()) {
    out += quote(value.get_ref<const std::string&>());
  } else if (value.is_array()) {
    out += '[';
    for (std::size_t k = 0; k < value.size(); ++k) {
      if (out.size() >= limit) return false;
      if (k > 0) out += ',';
      if (!append_bounded(out, value[k], limit)) return false;
    }
    out += ']';
  } else if (value.is_object()) {
    out += '{';
    for (auto member = value.begin(); member != value.end(); ++member) {
      if (out.size() >= limit) return false;
      if (member != value.begin()) out += ',';
      out += quote(member.key());
      out += ':';
      if (!append_bounded(out, member.value(), limit)) return false;
    }
    out += '}';
  } else {
    out += dump(value);
  }
  return true;
}

// `value` as compact JSON of about `limit` bytes at most, ending in "…" when cut, for messages.
std::string render_value(const json& value, std::size_t limit) {
  std::string out;
  if (!append_bounded(out, value, limit)) out += "\xE2\x80\xA6";
  return out;
}

std::string describe(const json& value) {
  return render_value(value, kMaxQuotedValueBytes);
}

// "number 3", "string \"x\"", "null", "array": what a type error says it got.
std::string describe_type(const json& value) {
  std::string out(type_name(value));
  if (!value.is_null() && !value.is_array() && !value.is_object()) {
    out += ' ';
    out += describe(value);
  }
  return out;
}

std::string plural(std::uint64_t count, std::string_view one, std::string_view many) {
  return std::to_string(count) + " " + std::string(count == 1 ? one : many);
}

constexpr std::array<std::pair<std::string_view, std::uint8_t>, 7> kTypeNames = {{
    {"null", kNullBit},
    {"boolean", kBooleanBit},
    {"object", kObjectBit},
    {"array", kArrayBit},
    {"number", kNumberBit},
    {"integer", kIntegerBit},
    {"string", kStringBit},
}};

std::uint8_t type_bit(std::string_view name) {
  for (const auto& [type, bit] : kTypeNames) {
    if (type == name) return bit;
  }
  return 0;
}

// "string", "string or null", "object, string or null".
std::string type_list(std::uint8_t types) {
  std::vector<std::string_view> names;
  for (const auto& [type, bit] : kTypeNames) {
    if ((types & bit) != 0) names.push_back(type);
  }
  std::string out;
  for (std::size_t k = 0; k < names.size(); ++k) {
    if (k > 0) out += k + 1 == names.size() ? " or " : ", ";
    out += names[k];
  }
  return out;
}

bool type_matches(std::uint8_t types, const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return (types & kNullBit) != 0;
    case json::value_t::boolean:
      return (types & kBooleanBit) != 0;
    case json::value_t::object:
      return (types & kObjectBit) != 0;
    case json::value_t::array:
      return (types & kArrayBit) != 0;
    case json::value_t::string:
      return (types & kStringBit) != 0;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return (types & kNumberBit) != 0 || ((types & kIntegerBit) != 0 && is_integral(value));
    case json::value_t::binary:
    case json::value_t::discarded:
      break;
  }
  return false;
}

std::string escape_token(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (const char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::uint64_t count_code_points(std::string_view text) {
  std::uint64_t count = 0;
  for (const char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0U) != 0x80U) ++count;
  }
  return count;
}

// ---------------------------------------------------------------------------------------------
// Compiling

[[noreturn]] void schema_error(const std::string& pointer, const std::string& reason) {
  throw std::invalid_argument(pointer + ": " + reason);
}

bool is_annotation(std::string_view key) {
  static constexpr std::array<std::string_view, 11> kAnnotations = {
      "title",    "description", "default",    "examples", "$schema",  "$id",
      "$comment", "format",      "deprecated", "readOnly", "writeOnly"};
  return std::find(kAnnotations.begin(), kAnnotations.end(), key) != kAnnotations.end();
}

bool is_unimplemented_standard_keyword(std::string_view key) {
  static constexpr std::array<std::string_view, 14> kUnimplemented = {
      "$anchor",          "$dynamicAnchor",   "$dynamicRef",           "$recursiveAnchor",
      "$recursiveRef",    "$vocabulary",      "dependentRequired",     "dependentSchemas",
      "dependencies",     "unevaluatedItems", "unevaluatedProperties", "contentEncoding",
      "contentMediaType", "contentSchema"};
  return std::find(kUnimplemented.begin(), kUnimplemented.end(), key) != kUnimplemented.end();
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The value of four hex digits at `at`, or nullopt.
std::optional<unsigned> hex4(std::string_view text, std::size_t at) {
  if (text.size() < at + 4) return std::nullopt;
  unsigned value = 0;
  for (std::size_t k = at; k < at + 4; ++k) {
    const int digit = hex_digit(text[k]);
    if (digit < 0) return std::nullopt;
    value = value * 16 + static_cast<unsigned>(digit);
  }
  return value;
}

std::string to_hex(unsigned value) {
  static constexpr std::string_view kDigits = "0123456789ABCDEF";
  std::string out;
  do {
    out.insert(out.begin(), kDigits[value % 16]);
    value /= 16;
  } while (value != 0);
  return out;
}

// Rewrites the ECMA-262 spellings RE2 does not know: \uXXXX (surrogate pairs joined) and \u{X…}
// become \x{…}, and a named group (?<name>…) becomes (?P<name>…). Everything else passes through.
std::string translate_ecma_regex(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  bool in_class = false;
  for (std::size_t i = 0; i < source.size(); ++i) {
    const char c = source[i];
    if (c == '\\' && i + 1 < source.size()) {
      if (source[i + 1] == 'u') {
        if (i + 2 < source.size() && source[i + 2] == '{') {
          out += "\\x{";
          i += 2;
          continue;
        }
        if (const auto unit = hex4(source, i + 2)) {
          unsigned code_point = *unit;
          i += 5;
          if (code_point >= 0xD800U && code_point <= 0xDBFFU && source.substr(i + 1, 2) == "\\u") {
            const auto low = hex4(source, i + 3);
            if (low && *low >= 0xDC00U && *low <= 0xDFFFU) {
              code_point = 0x10000U + ((code_point - 0xD800U) << 10U) + (*low - 0xDC00U);
              i += 6;
            }
          }
          out += "\\x{" + to_hex(code_point) + "}";
          continue;
        }
      }
      out += c;
      out += source[i + 1];
      ++i;
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
    } else if (c == '[') {
      in_class = true;
    } else if (c == '(' && source.substr(i, 3) == "(?<" && i + 3 < source.size() && source[i + 3] != '=' &&
               source[i + 3] != '!') {
      out += "(?P<";
      i += 2;
      continue;
    }
    out += c;
  }
  return out;
}

std::string percent_decode(std::string_view text, const std::string& pointer) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    const int high = i + 2 < text.size() ? hex_digit(text[i + 1]) : -1;
    const int low = i + 2 < text.size() ? hex_digit(text[i + 2]) : -1;
    if (high < 0 || low < 0) schema_error(pointer, "bad percent-encoding in reference " + quote(text));
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return out;
}

std::uint64_t non_negative_integer(const json& value, const std::string& pointer) {
  if (value.is_number_unsigned()) return value.get<std::uint64_t>();
  if (value.is_number_integer() && value.get<std::int64_t>() >= 0) {
    return static_cast<std::uint64_t>(value.get<std::int64_t>());
  }
  if (value.is_number_float()) {
    const double d = value.get<double>();
    if (d >= 0 && d < kTwoPow64 && std::floor(d) == d) return static_cast<std::uint64_t>(d);
  }
  schema_error(pointer, "must be a non-negative integer, got " + describe_type(value));
}

Bound number_bound(const json& value, const std::string& pointer) {
  if (!value.is_number()) schema_error(pointer, "must be a number, got " + describe_type(value));
  return Bound{to_number(value), dump(value)};
}

void require_schema(const json& value, const std::string& pointer) {
  if (!value.is_object() && !value.is_boolean()) {
    schema_error(pointer, "a schema must be an object or a boolean, got " + describe_type(value));
  }
}

class Compiler {
 public:
  Compiler(const json& root, CompiledSchema& out) : root_(root), out_(out) {}

  void run() {
    out_.root = subschema(root_, "", 0);
    while (!pending_.empty()) {
      const auto [id, schema] = pending_.back();
      pending_.pop_back();
      if (!filled_[id]) {
        const std::string pointer = pointers_[id];
        fill(id, *schema, pointer, 0);
      }
    }
    check_cycles();
  }

 private:
  struct Edge {
    NodeId target;
    std::string pointer;  // where the keyword that applies `target` sits
  };

  NodeId node_for(const std::string& pointer) {
    const auto [it, inserted] = ids_.try_emplace(pointer, static_cast<NodeId>(out_.nodes.size()));
    if (inserted) {
      out_.nodes.emplace_back();
      pointers_.push_back(pointer);
      filled_.push_back(false);
      in_place_.emplace_back();
    }
    return it->second;
  }

  NodeId subschema(const json& schema, const std::string& pointer, std::size_t depth) {
    require_schema(schema, pointer);
    const NodeId id = node_for(pointer);
    if (!filled_[id]) fill(id, schema, pointer, depth);
    return id;
  }

  std::vector<NodeId> schema_array(const json& value, const std::string& pointer, std::size_t depth) {
    if (!value.is_array() || value.empty()) {
      schema_error(pointer, "must be a non-empty array of schemas, got " + describe_type(value));
    }
    std::vector<NodeId> ids;
    ids.reserve(value.size());
    for (std::size_t k = 0; k < value.size(); ++k) {
      ids.push_back(subschema(value[k], pointer + "/" + std::to_string(k), depth));
    }
    return ids;
  }

  void require_object(const json& value, const std::string& pointer) {
    if (!value.is_object()) schema_error(pointer, "must be an object, got " + describe_type(value));
  }

  std::size_t add_pattern(const json& value, const std::string& pointer) {
    if (!value.is_string()) schema_error(pointer, "must be a string, got " + describe_type(value));
    return add_pattern(value.get<std::string>(), pointer);
  }

  std::size_t add_pattern(const std::string& source, const std::string& pointer) {
    re2::RE2::Options options;
    options.set_log_errors(false);
    options.set_never_capture(true);
    auto regex = std::make_unique<re2::RE2>(translate_ecma_regex(source), options);
    if (!regex->ok()) {
      schema_error(pointer, "invalid regular expression " + quote(source) + ": " + regex->error() +
                                " (RE2 syntax: no look-around or back-references)");
    }
    out_.patterns.push_back(Pattern{source, std::move(regex)});
    return out_.patterns.size() - 1;
  }

  NodeId reference(const json& value, const std::string& pointer) {
    if (!value.is_string()) schema_error(pointer, "must be a string, got " + describe_type(value));
    const auto& ref = value.get_ref<const std::string&>();
    if (ref.empty() || ref.front() != '#') {
      schema_error(pointer, "only local references (\"#\" or \"#/...\") are supported, got " + quote(ref));
    }
    const std::string fragment = percent_decode(std::string_view(ref).substr(1), pointer);
    if (!fragment.empty() && fragment.front() != '/') {
      schema_error(pointer, "anchor references such as " + quote(ref) +
                                " are not supported; use a JSON pointer such as \"#/$defs/name\"");
    }
    json::json_pointer target_pointer;
    try {
      target_pointer = json::json_pointer(fragment);
    } catch (const json::exception& e) {
      schema_error(pointer, "reference " + quote(ref) + " is not a valid JSON pointer: " + e.what());
    }
    const json* target = nullptr;
    try {
      if (root_.contains(target_pointer)) target = &root_.at(target_pointer);
    } catch (const json::exception&) {
      target = nullptr;
    }
    if (target == nullptr) {
      schema_error(pointer, "reference " + quote(ref) + " points to nothing in this schema");
    }
    if (!target->is_object() && !target->is_boolean()) {
      schema_error(pointer,
                   "reference " + quote(ref) + " points to " + describe_type(*target) + ", not a schema");
    }
    const NodeId id = node_for(target_pointer.to_string());
    if (!filled_[id]) pending_.emplace_back(id, target);
    return id;
  }

  void fill(NodeId id, const json& schema, const std::string& pointer, std::size_t depth) {
    filled_[id] = true;
    Node node;
    if (schema.is_boolean()) {
      node.reject_all = !schema.get<bool>();
      out_.nodes[id] = std::move(node);
      return;
    }
    if (depth > JsonSchema::kMaxDepth) {
      schema_error(pointer,
                   "subschemas nested deeper than " + std::to_string(JsonSchema::kMaxDepth) + " levels");
    }
    const std::size_t child_depth = depth + 1;
    const auto apply_in_place = [&](NodeId target, const std::string& at) {
      in_place_[id].push_back(Edge{target, at});
    };
    bool items_is_array = false;
    bool has_prefix_items = false;
    const json* additional_items = nullptr;

    for (const auto& [key, value] : schema.items()) {
      const std::string at = pointer + "/" + escape_token(key);
      if (key == "type") {
        node.types = parse_type(value, at);
      } else if (key == "enum") {
        if (!value.is_array()) schema_error(at, "must be an array, got " + describe_type(value));
        node.has_enum = true;
        node.enum_values.assign(value.begin(), value.end());
        node.enum_text = render_value(value, kMaxQuotedListBytes);
      } else if (key == "const") {
        node.const_value = value;
      } else if (key == "minimum") {
        node.minimum = number_bound(value, at);
      } else if (key == "maximum") {
        node.maximum = number_bound(value, at);
      } else if (key == "exclusiveMinimum" || key == "exclusiveMaximum") {
        if (value.is_boolean()) {
          schema_error(at, "the draft-04 boolean form is not supported; give the bound itself, e.g. \"" +
                               key + "\": 0");
        }
        (key == "exclusiveMinimum" ? node.exclusive_minimum : node.exclusive_maximum) =
            number_bound(value, at);
      } else if (key == "multipleOf") {
        node.multiple_of = number_bound(value, at);
        if (compare_numbers(node.multiple_of->value, Number{}) <= 0) {
          schema_error(at, "must be greater than 0, got " + dump(value));
        }
      } else if (key == "minLength") {
        node.min_length = non_negative_integer(value, at);
      } else if (key == "maxLength") {
        node.max_length = non_negative_integer(value, at);
      } else if (key == "pattern") {
        node.pattern = add_pattern(value, at);
      } else if (key == "items") {
        if (value.is_array()) {
          items_is_array = true;
          for (std::size_t k = 0; k < value.size(); ++k) {
            node.prefix_items.push_back(subschema(value[k], at + "/" + std::to_string(k), child_depth));
          }
        } else {
          node.items = subschema(value, at, child_depth);
        }
      } else if (key == "prefixItems") {
        has_prefix_items = true;
        const auto ids = schema_array(value, at, child_depth);
        node.prefix_items.insert(node.prefix_items.end(), ids.begin(), ids.end());
      } else if (key == "additionalItems") {
        require_schema(value, at);
        additional_items = &value;
      } else if (key == "minItems") {
        node.min_items = non_negative_integer(value, at);
      } else if (key == "maxItems") {
        node.max_items = non_negative_integer(value, at);
      } else if (key == "uniqueItems") {
        if (!value.is_boolean()) schema_error(at, "must be a boolean, got " + describe_type(value));
        node.unique_items = value.get<bool>();
      } else if (key == "contains") {
        node.contains = subschema(value, at, child_depth);
      } else if (key == "minContains") {
        node.min_contains = non_negative_integer(value, at);
      } else if (key == "maxContains") {
        node.max_contains = non_negative_integer(value, at);
      } else if (key == "properties") {
        require_object(value, at);
        for (const auto& [name, property] : value.items()) {
          node.properties.emplace_back(name, subschema(property, at + "/" + escape_token(name), child_depth));
        }
        std::sort(node.properties.begin(), node.properties.end(),
                  [](const auto& a, const auto& b) { return a.first < b.first; });
      } else if (key == "required") {
        node.required = parse_required(value, at);
      } else if (key == "patternProperties") {
        require_object(value, at);
        for (const auto& [source, property] : value.items()) {
          const std::string property_at = at + "/" + escape_token(source);
          const std::size_t regex = add_pattern(source, property_at);
          node.pattern_properties.emplace_back(regex, subschema(property, property_at, child_depth));
        }
      } else if (key == "additionalProperties") {
        node.additional_properties = subschema(value, at, child_depth);
      } else if (key == "propertyNames") {
        node.property_names = subschema(value, at, child_depth);
      } else if (key == "minProperties") {
        node.min_properties = non_negative_integer(value, at);
      } else if (key == "maxProperties") {
        node.max_properties = non_negative_integer(value, at);
      } else if (key == "$ref") {
        node.ref = reference(value, at);
        apply_in_place(*node.ref, at);
      } else if (key == "allOf" || key == "anyOf" || key == "oneOf") {
        auto ids = schema_array(value, at, child_depth);
        for (std::size_t k = 0; k < ids.size(); ++k) apply_in_place(ids[k], at + "/" + std::to_string(k));
        (key == "allOf" ? node.all_of : (key == "anyOf" ? node.any_of : node.one_of)) = std::move(ids);
      } else if (key == "not" || key == "if" || key == "then" || key == "else") {
        const NodeId target = subschema(value, at, child_depth);
        apply_in_place(target, at);
        (key == "not" ? node.not_schema
                      : (key == "if" ? node.if_schema
                                     : (key == "then" ? node.then_schema : node.else_schema))) = target;
      } else if (key == "$defs" || key == "definitions") {
        require_object(value, at);
        for (const auto& [name, definition] : value.items()) {
          subschema(definition, at + "/" + escape_token(name), child_depth);
        }
      } else if (is_annotation(key)) {
        continue;
      } else if (is_unimplemented_standard_keyword(key)) {
        schema_error(at, "keyword " + quote(key) + " is not supported");
      } else {
        schema_error(at, "unknown keyword " + quote(key));
      }
    }

    if (items_is_array && has_prefix_items) {
      schema_error(pointer + "/items",
                   "the array form of items (draft-07) cannot be combined with prefixItems; make items the "
                   "schema for the items after prefixItems");
    }
    if (additional_items != nullptr) {
      if (!items_is_array) {
        schema_error(pointer + "/additionalItems",
                     "additionalItems only applies after an array-form items (draft-07); with prefixItems, "
                     "use items for the remaining items");
      }
      node.items = subschema(*additional_items, pointer + "/additionalItems", child_depth);
    }

    node.has_number_rules =
        node.minimum || node.maximum || node.exclusive_minimum || node.exclusive_maximum || node.multiple_of;
    node.has_string_rules = node.min_length || node.max_length || node.pattern;
    node.has_array_rules = !node.prefix_items.empty() || node.items || node.min_items || node.max_items ||
                           node.unique_items || node.contains;
    node.has_object_rules = !node.properties.empty() || !node.required.empty() ||
                            !node.pattern_properties.empty() || node.additional_properties ||
                            node.property_names || node.min_properties || node.max_properties;
    out_.nodes[id] = std::move(node);
  }

  static std::uint8_t parse_type(const json& value, const std::string& pointer) {
    const auto bit_of = [](const json& name, const std::string& at) {
      if (!name.is_string()) schema_error(at, "must be a type name, got " + describe_type(name));
      const std::uint8_t bit = type_bit(name.get_ref<const std::string&>());
      if (bit == 0) {
        schema_error(at, "unknown type " + describe(name) +
                             " (expected null, boolean, object, array, number, integer or string)");
      }
      return bit;
    };
    if (value.is_string()) return bit_of(value, pointer);
    if (!value.is_array() || value.empty()) {
      schema_error(pointer, "must be a type name or a non-empty array of them, got " + describe_type(value));
    }
    std::uint8_t types = 0;
    for (std::size_t k = 0; k < value.size(); ++k) {
      const std::string at = pointer + "/" + std::to_string(k);
      const std::uint8_t bit = bit_of(value[k], at);
      if ((types & bit) != 0) schema_error(at, "type " + describe(value[k]) + " is listed twice");
      types |= bit;
    }
    return types;
  }

  static std::vector<std::string> parse_required(const json& value, const std::string& pointer) {
    if (!value.is_array())
      schema_error(pointer, "must be an array of property names, got " + describe_type(value));
    std::vector<std::string> names;
    names.reserve(value.size());
    for (std::size_t k = 0; k < value.size(); ++k) {
      const std::string at = pointer + "/" + std::to_string(k);
      if (!value[k].is_string()) schema_error(at, "must be a property name, got " + describe_type(value[k]));
      const auto& name = value[k].get_ref<const std::string&>();
      if (std::find(names.begin(), names.end(), name) != names.end()) {
        schema_error(at, "property " + quote(name) + " is listed twice");
      }
      names.push_back(name);
    }
    return names;
  }

  // A cycle of in-place applicators ($ref, allOf, anyOf, oneOf, not, if, then, else) would evaluate
  // the same instance location forever; an iterative depth-first search finds one.
  void check_cycles() const {
    enum class Mark : std::uint8_t { kNew, kOnPath, kDone };
    struct Step {
      NodeId node;
      std::size_t next_edge;
    };
    std::vector<Mark> marks(in_place_.size(), Mark::kNew);
    std::vector<Step> path;
    for (NodeId start = 0; start < in_place_.size(); ++start) {
      if (marks[start] != Mark::kNew) continue;
      marks[start] = Mark::kOnPath;
      path.push_back(Step{start, 0});
      while (!path.empty()) {
        Step& step = path.back();
        if (step.next_edge == in_place_[step.node].size()) {
          marks[step.node] = Mark::kDone;
          path.pop_back();
          continue;
        }
        const Edge& edge = in_place_[step.node][step.next_edge++];
        if (marks[edge.target] == Mark::kOnPath) report_cycle(path, edge);
        if (marks[edge.target] == Mark::kNew) {
          marks[edge.target] = Mark::kOnPath;
          path.push_back(Step{edge.target, 0});
        }
      }
    }
  }

  template <typename Steps>
  [[noreturn]] void report_cycle(const Steps& path, const Edge& closing) const {
    std::string cycle;
    bool on_cycle = false;
    for (const auto& step : path) {
      on_cycle = on_cycle || step.node == closing.target;
      if (on_cycle) cycle += "#" + pointers_[step.node] + " -> ";
    }
    cycle += "#" + pointers_[closing.target];
    schema_error(closing.pointer, "reference cycle that never moves into the instance: " + cycle);
  }

  const json& root_;
  CompiledSchema& out_;
  std::unordered_map<std::string, NodeId> ids_;
  std::vector<std::string> pointers_;
  std::vector<bool> filled_;
  std::vector<std::vector<Edge>> in_place_;
  std::vector<std::pair<NodeId, const json*>> pending_;
};

// ---------------------------------------------------------------------------------------------
// Validating

// One step of the instance location, on the stack: rendered into a JSON pointer only on failure.
struct PathSegment {
  const PathSegment* parent = nullptr;
  std::string_view key;
  std::size_t index = 0;
  bool is_index = false;
};

std::string render(const PathSegment* path) {
  std::vector<const PathSegment*> chain;
  for (const PathSegment* p = path; p != nullptr; p = p->parent) chain.push_back(p);
  std::string out;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    out += '/';
    out += (*it)->is_index ? std::to_string((*it)->index) : escape_token((*it)->key);
  }
  return out;
}

struct Failure {
  std::string pointer;
  std::string reason;
};

enum class Verdict : std::uint8_t {
  kValid,
  kInvalid,
  kAbort,  // a depth bound was hit, so no verdict; the reason is in Validator::abort_
};

class Validator {
 public:
  explicit Validator(const CompiledSchema& schema) : schema_(schema) {}

  std::optional<std::string> run(const json& instance) {
    Failure failure;
    const Verdict verdict = check(schema_.root, instance, nullptr, 0, &failure);
    if (verdict == Verdict::kValid) return std::nullopt;
    const Failure& reported = verdict == Verdict::kAbort ? abort_ : failure;
    return reported.pointer + ": " + reported.reason;
  }

 private:
  // Builds the reason only when someone reads it: branches of anyOf, oneOf, not, if and contains
  // are evaluated with `out` null. Message building and each group of checks live in their own
  // (noinline) functions, so a level of recursion only carries the frames it passes through:
  // about 1.2 KiB per $ref link and 2.5 KiB per object level under ASan, far less without.
  template <typename MakeReason>
  [[gnu::noinline]] static Verdict fail(Failure* out, const PathSegment* path, MakeReason&& make_reason) {
    if (out != nullptr) {
      out->pointer = render(path);
      out->reason = std::forward<MakeReason>(make_reason)();
    }
    return Verdict::kInvalid;
  }

  [[gnu::noinline]] Verdict abort(const PathSegment* path, std::string reason) {
    abort_ = Failure{render(path), std::move(reason)};
    return Verdict::kAbort;
  }

  [[gnu::noinline]] Verdict too_deep(const PathSegment* path) {
    return abort(path, "instance nested deeper than " + std::to_string(JsonSchema::kMaxDepth) + " levels");
  }

  [[gnu::noinline]] Verdict too_long_chain(const PathSegment* path) {
    return abort(path, "schema evaluation nested deeper than " + std::to_string(kMaxEvaluationDepth) +
                           " levels (a long chain of references?)");
  }

  Verdict check(NodeId id, const json& value, const PathSegment* path, std::size_t depth, Failure* out) {
    if (active_ >= kMaxEvaluationDepth) return too_long_chain(path);
    ++active_;
    const Verdict verdict = evaluate(schema_.nodes[id], value, path, depth, out);
    --active_;
    return verdict;
  }

  Verdict check_child(NodeId id, const json& value, const PathSegment& child, std::size_t depth,
                      Failure* out) {
    if (depth + 1 > JsonSchema::kMaxDepth) return too_deep(&child);
    return check(id, value, &child, depth + 1, out);
  }

  Verdict evaluate(const Node& node, const json& value, const PathSegment* path, std::size_t depth,
                   Failure* out) {
    if (node.reject_all) {
      return fail(out, path, [] { return std::string("no value is allowed here (the schema is false)"); });
    }
    if (node.types != kAllTypes && !type_matches(node.types, value)) {
      return fail(out, path,
                  [&] { return "expected " + type_list(node.types) + ", got " + describe_type(value); });
    }
    if (node.const_value || node.has_enum) {
      const Verdict verdict = check_value_set(node, value, path, depth, out);
      if (verdict != Verdict::kValid) return verdict;
    }
    Verdict verdict = Verdict::kValid;
    switch (value.type()) {
      case json::value_t::number_integer:
      case json::value_t::number_unsigned:
      case json::value_t::number_float:
        if (node.has_number_rules) verdict = check_number(node, value, path, out);
        break;
      case json::value_t::string:
        if (node.has_string_rules) verdict = check_string(node, value, path, out);
        break;
      case json::value_t::array:
        if (node.has_array_rules) verdict = check_array(node, value, path, depth, out);
        break;
      case json::value_t::object:
        if (node.has_object_rules) verdict = check_object(node, value, path, depth, out);
        break;
      case json::value_t::null:
      case json::value_t::boolean:
      case json::value_t::binary:
      case json::value_t::discarded:
        break;
    }
    if (verdict != Verdict::kValid) return verdict;
    return check_applicators(node, value, path, depth, out);
  }

  // const and enum.
  [[gnu::noinline]] Verdict check_value_set(const Node& node, const json& value, const PathSegment* path,
                                            std::size_t depth, Failure* out) {
    const std::size_t budget = JsonSchema::kMaxDepth - depth;
    if (node.const_value) {
      bool deep = false;
      const int order = compare_json(value, *node.const_value, budget, deep);
      if (deep) return too_deep(path);
      if (order != 0) {
        return fail(out, path, [&] {
          return "value " + describe(value) + " is not the constant " +
                 render_value(*node.const_value, kMaxQuotedListBytes);
        });
      }
    }
    if (node.has_enum) {
      bool deep = false;
      const bool found =
          std::any_of(node.enum_values.begin(), node.enum_values.end(),
                      [&](const json& option) { return compare_json(value, option, budget, deep) == 0; });
      if (deep) return too_deep(path);
      if (!found) {
        return fail(out, path,
                    [&] { return "value " + describe(value) + " is not one of " + node.enum_text; });
      }
    }
    return Verdict::kValid;
  }

  [[gnu::noinline]] static Verdict check_number(const Node& node, const json& value, const PathSegment* path,
                                                Failure* out) {
    const Number x = to_number(value);
    if (node.minimum && compare_numbers(x, node.minimum->value) < 0) {
      return fail(out, path,
                  [&] { return "value " + dump(value) + " is less than minimum " + node.minimum->text; });
    }
    if (node.maximum && compare_numbers(x, node.maximum->value) > 0) {
      return fail(out, path,
                  [&] { return "value " + dump(value) + " is greater than maximum " + node.maximum->text; });
    }
    if (node.exclusive_minimum && compare_numbers(x, node.exclusive_minimum->value) <= 0) {
      return fail(out, path, [&] {
        return "value " + dump(value) + " is not greater than exclusiveMinimum " +
               node.exclusive_minimum->text;
      });
    }
    if (node.exclusive_maximum && compare_numbers(x, node.exclusive_maximum->value) >= 0) {
      return fail(out, path, [&] {
        return "value " + dump(value) + " is not less than exclusiveMaximum " + node.exclusive_maximum->text;
      });
    }
    if (node.multiple_of && !is_multiple_of(x, node.multiple_of->value)) {
      return fail(out, path,
                  [&] { return "value " + dump(value) + " is not a multiple of " + node.multiple_of->text; });
    }
    return Verdict::kValid;
  }

  [[gnu::noinline]] Verdict check_string(const Node& node, const json& value, const PathSegment* path,
                                         Failure* out) const {
    const auto& text = value.get_ref<const std::string&>();
    if (node.min_length || node.max_length) {
      const std::uint64_t length = count_code_points(text);
      if (node.min_length && length < *node.min_length) {
        return fail(out, path, [&] {
          return "string has " + plural(length, "character", "characters") + ", fewer than minLength " +
                 std::to_string(*node.min_length);
        });
      }
      if (node.max_length && length > *node.max_length) {
        return fail(out, path, [&] {
          return "string has " + plural(length, "character", "characters") + ", more than maxLength " +
                 std::to_string(*node.max_length);
        });
      }
    }
    if (node.pattern) {
      const Pattern& pattern = schema_.patterns[*node.pattern];
      if (!re2::RE2::PartialMatch(re2::StringPiece(text.data(), text.size()), *pattern.regex)) {
        return fail(out, path, [&] {
          return "string " + quote(text) + " does not match pattern " + quote(pattern.source);
        });
      }
    }
    return Verdict::kValid;
  }

  [[gnu::noinline]] Verdict check_array(const Node& node, const json& value, const PathSegment* path,
                                        std::size_t depth, Failure* out) {
    const std::size_t size = value.size();
    if (node.min_items && size < *node.min_items) {
      return fail(out, path, [&] {
        return "array has " + plural(size, "item", "items") + ", fewer than minItems " +
               std::to_string(*node.min_items);
      });
    }
    if (node.max_items && size > *node.max_items) {
      return fail(out, path, [&] {
        return "array has " + plural(size, "item", "items") + ", more than maxItems " +
               std::to_string(*node.max_items);
      });
    }
    const std::size_t prefix = node.prefix_items.size();
    for (std::size_t k = 0; k < size; ++k) {
      if (k >= prefix && !node.items) break;
      const NodeId item_schema = k < prefix ? node.prefix_items[k] : *node.items;
      const PathSegment child{path, {}, k, true};
      if (k >= prefix && schema_.nodes[item_schema].reject_all) {
        return fail(out, &child, [&] {
          return "item is not allowed: the array may have at most " + plural(prefix, "item", "items");
        });
      }
      const Verdict verdict = check_child(item_schema, value[k], child, depth, out);
      if (verdict != Verdict::kValid) return verdict;
    }
    if (node.contains) {
      const std::uint64_t min_matches = node.min_contains.value_or(1);
      std::uint64_t matches = 0;
      for (std::size_t k = 0; k < size; ++k) {
        if (!node.max_contains && matches >= min_matches) break;
        const PathSegment child{path, {}, k, true};
        const Verdict verdict = check_child(*node.contains, value[k], child, depth, nullptr);
        if (verdict == Verdict::kAbort) return verdict;
        if (verdict == Verdict::kValid) ++matches;
      }
      if (matches < min_matches) {
        return fail(out, path, [&] {
          if (!node.min_contains) return std::string("no item matches the contains schema");
          return plural(matches, "item matches", "items match") +
                 " the contains schema, fewer than minContains " + std::to_string(min_matches);
        });
      }
      if (node.max_contains && matches > *node.max_contains) {
        return fail(out, path, [&] {
          return plural(matches, "item matches", "items match") +
                 " the contains schema, more than maxContains " + std::to_string(*node.max_contains);
        });
      }
    }
    if (node.unique_items && size > 1) {
      bool deep = false;
      const auto duplicate = find_duplicate(value, JsonSchema::kMaxDepth - depth, deep);
      if (deep) return too_deep(path);
      if (duplicate) {
        return fail(out, path, [&] {
          return "items " + std::to_string(duplicate->first) + " and " + std::to_string(duplicate->second) +
                 " are equal, but uniqueItems is true";
        });
      }
    }
    return Verdict::kValid;
  }

  // The first item equal to an earlier one, as (earlier, later) indexes. Small arrays compare pairs;
  // larger ones sort an index.
  [[gnu::noinline]] static std::optional<std::pair<std::size_t, std::size_t>> find_duplicate(
      const json& array, std::size_t budget, bool& deep) {
    constexpr std::size_t kPairwiseLimit = 16;
    const std::size_t size = array.size();
    if (size <= kPairwiseLimit) {
      for (std::size_t later = 1; later < size; ++later) {
        for (std::size_t earlier = 0; earlier < later; ++earlier) {
          if (compare_json(array[earlier], array[later], budget, deep) == 0) return std::pair{earlier, later};
        }
      }
      return std::nullopt;
    }
    std::vector<std::size_t> order(size);
    for (std::size_t k = 0; k < size; ++k) order[k] = k;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return compare_json(array[a], array[b], budget, deep) < 0;
    });
    std::optional<std::pair<std::size_t, std::size_t>> first;
    std::size_t run_start = 0;
    for (std::size_t k = 1; k < size; ++k) {
      if (compare_json(array[order[k - 1]], array[order[k]], budget, deep) != 0) {
        run_start = k;
        continue;
      }
      // Within a run of equal items the order is by index (stable sort), so the run's second item is
      // its first duplicate.
      if (k == run_start + 1 && (!first || order[k] < first->second))
        first = std::pair{order[run_start], order[k]};
    }
    return first;
  }

  [[gnu::noinline]] Verdict check_property_name(NodeId id, const std::string& key, const PathSegment* path,
                                                std::size_t depth, Failure* out) {
    Failure name_failure;
    const json name(key);
    const Verdict verdict = check(id, name, path, depth, out != nullptr ? &name_failure : nullptr);
    if (verdict != Verdict::kInvalid) return verdict;
    return fail(out, path,
                [&] { return "invalid property name " + quote(key) + ": " + name_failure.reason; });
  }

  [[gnu::noinline]] Verdict check_object(const Node& node, const json& value, const PathSegment* path,
                                         std::size_t depth, Failure* out) {
    for (const std::string& name : node.required) {
      if (value.find(name) == value.end()) {
        return fail(out, path, [&] { return "missing required property " + quote(name); });
      }
    }
    const std::size_t size = value.size();
    if (node.min_properties && size < *node.min_properties) {
      return fail(out, path, [&] {
        return "object has " + plural(size, "property", "properties") + ", fewer than minProperties " +
               std::to_string(*node.min_properties);
      });
    }
    if (node.max_properties && size > *node.max_properties) {
      return fail(out, path, [&] {
        return "object has " + plural(size, "property", "properties") + ", more than maxProperties " +
               std::to_string(*node.max_properties);
      });
    }
    if (node.properties.empty() && node.pattern_properties.empty() && !node.additional_properties &&
        !node.property_names) {
      return Verdict::kValid;
    }
    for (auto member = value.begin(); member != value.end(); ++member) {
      const std::string& key = member.key();
      if (node.property_names) {
        const Verdict verdict = check_property_name(*node.property_names, key, path, depth, out);
        if (verdict != Verdict::kValid) return verdict;
      }
      const PathSegment child{path, key, 0, false};
      bool matched = false;
      const auto property =
          std::lower_bound(node.properties.begin(), node.properties.end(), key,
                           [](const auto& entry, const std::string& name) { return entry.first < name; });
      if (property != node.properties.end() && property->first == key) {
        matched = true;
        const Verdict verdict = check_child(property->second, member.value(), child, depth, out);
        if (verdict != Verdict::kValid) return verdict;
      }
      for (const auto& [pattern, schema] : node.pattern_properties) {
        if (!re2::RE2::PartialMatch(re2::StringPiece(key.data(), key.size()),
                                    *schema_.patterns[pattern].regex)) {
          continue;
        }
        matched = true;
        const Verdict verdict = check_child(schema, member.value(), child, depth, out);
        if (verdict != Verdict::kValid) return verdict;
      }
      if (matched || !node.additional_properties) continue;
      if (schema_.nodes[*node.additional_properties].reject_all) {
        return fail(out, &child, [&] { return "additional property " + quote(key) + " is not allowed"; });
      }
      const Verdict verdict = check_child(*node.additional_properties, member.value(), child, depth, out);
      if (verdict != Verdict::kValid) return verdict;
    }
    return Verdict::kValid;
  }

  [[gnu::noinline]] Verdict check_applicators(const Node& node, const json& value, const PathSegment* path,
                                              std::size_t depth, Failure* out) {
    if (node.ref) {
      const Verdict verdict = check(*node.ref, value, path, depth, out);
      if (verdict != Verdict::kValid) return verdict;
    }
    for (const NodeId branch : node.all_of) {
      const Verdict verdict = check(branch, value, path, depth, out);
      if (verdict != Verdict::kValid) return verdict;
    }
    if (!node.any_of.empty()) {
      bool matched = false;
      for (const NodeId branch : node.any_of) {
        const Verdict verdict = check(branch, value, path, depth, nullptr);
        if (verdict == Verdict::kAbort) return verdict;
        if (verdict == Verdict::kValid) {
          matched = true;
          break;
        }
      }
      if (!matched) return fail_branches(out, path, "anyOf", node.any_of, value, depth);
    }
    if (!node.one_of.empty()) {
      std::optional<std::size_t> first;
      for (std::size_t k = 0; k < node.one_of.size(); ++k) {
        const Verdict verdict = check(node.one_of[k], value, path, depth, nullptr);
        if (verdict == Verdict::kAbort) return verdict;
        if (verdict != Verdict::kValid) continue;
        if (first) {
          return fail(out, path, [&] {
            return "value matches more than one oneOf schema (" + std::to_string(*first) + " and " +
                   std::to_string(k) + ")";
          });
        }
        first = k;
      }
      if (!first) return fail_branches(out, path, "oneOf", node.one_of, value, depth);
    }
    if (node.not_schema) {
      const Verdict verdict = check(*node.not_schema, value, path, depth, nullptr);
      if (verdict == Verdict::kAbort) return verdict;
      if (verdict == Verdict::kValid) {
        return fail(out, path, [] { return std::string("value must not match the \"not\" schema"); });
      }
    }
    if (node.if_schema && (node.then_schema || node.else_schema)) {
      const Verdict condition = check(*node.if_schema, value, path, depth, nullptr);
      if (condition == Verdict::kAbort) return condition;
      const std::optional<NodeId>& branch =
          condition == Verdict::kValid ? node.then_schema : node.else_schema;
      if (branch) return check(*branch, value, path, depth, out);
    }
    return Verdict::kValid;
  }

  // anyOf/oneOf with no matching branch: the reason lists why each branch failed.
  [[gnu::noinline]] Verdict fail_branches(Failure* out, const PathSegment* path, std::string_view keyword,
                                          const std::vector<NodeId>& branches, const json& value,
                                          std::size_t depth) {
    if (out == nullptr) return Verdict::kInvalid;
    const std::string here = render(path);
    std::string reason = "value matches none of the " + std::string(keyword) + " schemas (";
    for (std::size_t k = 0; k < branches.size(); ++k) {
      if (reason.size() > kMaxReasonBytes) {
        reason += "; \xE2\x80\xA6";
        break;
      }
      Failure branch;
      const Verdict verdict = check(branches[k], value, path, depth, &branch);
      if (verdict == Verdict::kAbort) return verdict;
      if (k > 0) reason += "; ";
      std::string detail = std::to_string(k) + ": ";
      if (branch.pointer != here) detail += branch.pointer + ": ";
      detail += branch.reason;
      reason += shorten(std::move(detail), kMaxBranchReasonBytes);
    }
    reason += ")";
    out->pointer = here;
    out->reason = std::move(reason);
    return Verdict::kInvalid;
  }

  const CompiledSchema& schema_;
  std::size_t active_ = 0;
  Failure abort_;
};

}  // namespace

JsonSchema JsonSchema::compile(const json& schema) {
  auto compiled = std::make_shared<detail::CompiledSchema>();
  Compiler(schema, *compiled).run();
  return JsonSchema(std::move(compiled));
}

std::optional<std::string> JsonSchema::validate(const json& instance) const {
  return Validator(*compiled_).run(instance);
}

}  // namespace kafka_llm::features
