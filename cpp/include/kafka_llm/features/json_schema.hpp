#pragma once

#include <cstddef>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

namespace kafka_llm::features {

namespace detail {
struct CompiledSchema;
}  // namespace detail

/// A compiled JSON Schema that validates JSON instances (model outputs).
///
/// Dialect: a subset of draft 2020-12 that also accepts the usual draft-07 spellings.
///  - Assertions: `type` (a name or an array of names; `integer` accepts any number with no
///    fractional part, so 1.0 is an integer), `enum`, `const` (JSON equality: 1 equals 1.0),
///    `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum` (numbers only; the draft-04
///    boolean forms are rejected), `multipleOf`, `minLength`, `maxLength` (Unicode code points),
///    `pattern`, `minItems`, `maxItems`, `uniqueItems`, `minContains`, `maxContains`, `required`,
///    `minProperties`, `maxProperties`.
///  - Applicators: `properties`, `patternProperties`, `additionalProperties` (boolean or schema),
///    `propertyNames`, `prefixItems`, `items` (a schema; draft-07's array form means `prefixItems`,
///    and then `additionalItems` applies to the rest; `additionalItems` anywhere else, or both
///    forms together, is a compile error), `contains`, `allOf`, `anyOf`, `oneOf`, `not`,
///    `if`/`then`/`else`, and `$ref`.
///  - `$ref` is local only: `#` or a JSON pointer fragment such as `#/$defs/name` or
///    `#/definitions/name`, resolved against the document passed to compile() (an `$id` does not
///    change the base). Keywords next to `$ref` apply too (2020-12). References may recurse through
///    the instance (a tree type referring to itself); a cycle that never moves into a child of the
///    instance (`{"$ref": "#"}`, or two definitions whose `allOf`s name each other) is a compile
///    error, because it could never finish.
///  - Boolean schemas `true` and `false` anywhere a schema is allowed.
///  - Annotations accepted and ignored: `title`, `description`, `default`, `examples`, `$schema`,
///    `$id`, `$comment`, `deprecated`, `readOnly`, `writeOnly`, and `format`, which is an
///    annotation only (2020-12's default): `"format": "email"` does not check the string.
///  - `$defs` and `definitions` hold schemas; each is compiled (and checked) even when unused.
///  - Every other keyword is a compile error naming it, so a schema never silently validates less
///    than its author meant.
///
/// Patterns use RE2 (linear time, no catastrophic backtracking) and, as JSON Schema says, match
/// anywhere in the string unless anchored. ECMA-262 spellings `\uXXXX`, `\u{X…}` and `(?<name>…)`
/// are translated; look-around and back-references are not available and fail to compile. RE2's
/// `\d`, `\w` and `\s` are ASCII classes.
///
/// compile() does all the work once (regexes compiled, references resolved), so validate() only
/// walks the instance; it allocates nothing when the instance is valid, except the index a
/// `uniqueItems` check sorts for arrays of more than 16 items and one string per name a
/// `propertyNames` schema checks.
///
/// Bounds: validate() looks at most kMaxDepth levels into the instance and nests at most 1024
/// schema evaluations (a chain of references within one instance location counts each link);
/// beyond either it reports an error instead of recursing further, never a verdict it could not
/// establish (a too-deep instance under `not` is an error, not a pass).
///
/// A JsonSchema is immutable; copies share the compiled form, and validate() may be called from
/// several threads at once.
class JsonSchema {
 public:
  /// Instances nested deeper than this (arrays/objects below the root that the schema has to look
  /// into) are rejected by validate(); schemas whose subschemas nest deeper are rejected by
  /// compile().
  static constexpr std::size_t kMaxDepth = 128;

  /// Compiles `schema` (an object or a boolean). Throws std::invalid_argument with the message
  /// "<schema JSON pointer>: <reason>" for an invalid schema, an unsupported keyword, a regex RE2
  /// cannot compile, a `$ref` that is not local or points nowhere, or a reference cycle. The
  /// pointer of the root is the empty string, so a problem there reads ": <reason>".
  static JsonSchema compile(const nlohmann::json& schema);

  /// nullopt when `instance` is valid; otherwise the first violation found, as
  /// "<instance JSON pointer>: <reason>", e.g. `/label: value "maybe" is not one of ["pos","neg"]`
  /// (the root's pointer is empty: `: expected object, got array`). "First" is deterministic:
  /// object members are visited in key order, and at each location the checks run as type, const,
  /// enum, the keywords of the instance's type, then $ref, allOf, anyOf, oneOf, not, if/then/else.
  /// A failed anyOf/oneOf lists each branch's reason. The pointer is exact; values quoted in the
  /// reason are shortened, so a reason stays within about 1 KiB.
  [[nodiscard]] std::optional<std::string> validate(const nlohmann::json& instance) const;

 private:
  explicit JsonSchema(std::shared_ptr<const detail::CompiledSchema> compiled)
      : compiled_(std::move(compiled)) {}

  std::shared_ptr<const detail::CompiledSchema> compiled_;
};

}  // namespace kafka_llm::features
