#include "kafka_llm/features/json_schema.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

namespace kafka_llm::features {
namespace {

using nlohmann::json;

// Cases written after the official JSON-Schema-Test-Suite (draft 2020-12 and draft-07 folders):
// one schema, then instances with the expected verdict.
struct Case {
  std::string_view instance;
  bool valid;
};

struct Group {
  std::string_view description;
  std::string_view schema;
  std::vector<Case> cases;
};

void run_groups(const std::vector<Group>& groups) {
  for (const auto& group : groups) {
    SCOPED_TRACE(std::string(group.description));
    std::optional<JsonSchema> schema;
    try {
      schema = JsonSchema::compile(json::parse(group.schema));
    } catch (const std::invalid_argument& e) {
      ADD_FAILURE() << group.description << ": schema did not compile: " << e.what();
      continue;
    }
    for (const auto& c : group.cases) {
      const auto error = schema->validate(json::parse(c.instance));
      EXPECT_EQ(!error.has_value(), c.valid)
          << group.description << ": " << c.instance << " -> " << error.value_or("valid");
    }
  }
}

std::string validate(std::string_view schema, std::string_view instance) {
  return JsonSchema::compile(json::parse(schema)).validate(json::parse(instance)).value_or("valid");
}

std::string compile_error(std::string_view schema) {
  try {
    JsonSchema::compile(json::parse(schema));
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "compiled";
}

json nested_arrays(std::size_t levels) {
  json value = json::array();
  for (std::size_t k = 1; k < levels; ++k) value = json::array({std::move(value)});
  return value;
}

std::string zeros_pointer(std::size_t count) {
  std::string out;
  for (std::size_t k = 0; k < count; ++k) out += "/0";
  return out;
}

TEST(JsonSchemaKeywords, Type) {
  run_groups({
      {"integer",
       R"({"type": "integer"})",
       {{"1", true},
        {"1.0", true},
        {"-0.0", true},
        {"1e3", true},
        {"1.1", false},
        {R"("foo")", false},
        {R"("1")", false},
        {"{}", false},
        {"[]", false},
        {"true", false},
        {"null", false}}},
      {"number",
       R"({"type": "number"})",
       {{"1", true}, {"1.0", true}, {"1.1", true}, {R"("1")", false}, {"null", false}, {"[]", false}}},
      {"string",
       R"({"type": "string"})",
       {{"1", false}, {R"("foo")", true}, {R"("")", true}, {R"("1")", true}, {"{}", false}, {"null", false}}},
      {"object", R"({"type": "object"})", {{"{}", true}, {R"({"a": 1})", true}, {"[]", false}, {"1", false}}},
      {"array", R"({"type": "array"})", {{"[]", true}, {"[1]", true}, {"{}", false}, {R"("[]")", false}}},
      {"boolean",
       R"({"type": "boolean"})",
       {{"true", true}, {"false", true}, {"0", false}, {R"("")", false}, {"null", false}}},
      {"null", R"({"type": "null"})", {{"null", true}, {"0", false}, {"false", false}, {R"("")", false}}},
      {"integer or string",
       R"({"type": ["integer", "string"]})",
       {{"1", true}, {R"("foo")", true}, {"1.1", false}, {"{}", false}, {"null", false}}},
      {"array or object",
       R"({"type": ["array", "object"]})",
       {{"[1, 2]", true}, {R"({"a": 1})", true}, {"1", false}, {"null", false}}},
      {"null or integer", R"({"type": ["null", "integer"]})", {{"null", true}, {"2", true}, {"2.5", false}}},
      {"big integers are integers",
       R"({"type": "integer"})",
       {{"18446744073709551615", true}, {"-9223372036854775808", true}, {"1e300", true}}},
  });
}

TEST(JsonSchemaKeywords, Enum) {
  run_groups({
      {"simple", R"({"enum": [1, 2, 3]})", {{"1", true}, {"4", false}, {"1.0", true}}},
      {"heterogeneous",
       R"({"enum": [6, "foo", [], true, {"foo": 12}]})",
       {{"[]", true},
        {"null", false},
        {R"({"foo": false})", false},
        {R"({"foo": 12})", true},
        {R"({"foo": 12, "boo": 42})", false},
        {R"("foo")", true},
        {"true", true}}},
      {"false does not match 0", R"({"enum": [false]})", {{"false", true}, {"0", false}, {"0.0", false}}},
      {"0 does not match false", R"({"enum": [0]})", {{"false", false}, {"0", true}, {"0.0", true}}},
      {"[false] does not match [0]",
       R"({"enum": [[false]]})",
       {{"[false]", true}, {"[0]", false}, {"[0.0]", false}}},
      {"1 does not match true", R"({"enum": [1]})", {{"true", false}, {"1", true}, {"1.0", true}}},
      {"nul characters",
       R"({"enum": ["hello\u0000there"]})",
       {{R"("hello\u0000there")", true}, {R"("hellothere")", false}}},
      {"member order of objects does not matter",
       R"({"enum": [{"a": 1, "b": [1, 2]}]})",
       {{R"({"b": [1, 2], "a": 1})", true}, {R"({"b": [2, 1], "a": 1})", false}}},
      {"empty enum matches nothing", R"({"enum": []})", {{"null", false}, {"1", false}}},
  });
}

TEST(JsonSchemaKeywords, Const) {
  run_groups({
      {"number", R"({"const": 2})", {{"2", true}, {"5", false}, {R"("a")", false}, {"2.0", true}}},
      {"object",
       R"({"const": {"foo": "bar", "baz": "bax"}})",
       {{R"({"foo": "bar", "baz": "bax"})", true},
        {R"({"baz": "bax", "foo": "bar"})", true},
        {R"({"foo": "bar"})", false},
        {"[1, 2]", false}}},
      {"array",
       R"({"const": [{"foo": "bar"}]})",
       {{R"([{"foo": "bar"}])", true}, {R"([{"foo": "baz"}])", false}}},
      {"null", R"({"const": null})", {{"null", true}, {"0", false}}},
      {"false", R"({"const": false})", {{"false", true}, {"0", false}, {"0.0", false}}},
      {"1 is not true", R"({"const": 1})", {{"true", false}, {"1.0", true}, {"1", true}}},
      {"-2.0",
       R"({"const": -2.0})",
       {{"-2", true}, {"2", false}, {"-2.0", true}, {"2.0", false}, {"-2.00001", false}}},
      {"2^53 compared exactly",
       R"({"const": 9007199254740992})",
       {{"9007199254740992", true},
        {"9007199254740991", false},
        {"9007199254740992.0", true},
        {"9007199254740993", false}}},
      {"empty string", R"({"const": ""})", {{R"("")", true}, {"0", false}, {"null", false}}},
  });
}

TEST(JsonSchemaKeywords, Properties) {
  run_groups({
      {"two properties",
       R"({"properties": {"foo": {"type": "integer"}, "bar": {"type": "string"}}})",
       {{R"({"foo": 1, "bar": "baz"})", true},
        {R"({"foo": 1, "bar": {}})", false},
        {R"({"foo": [], "bar": {}})", false},
        {R"({"quux": []})", true},
        {"[]", true},
        {"12", true}}},
      {"with patternProperties and additionalProperties",
       R"({"properties": {"foo": {"type": "array", "maxItems": 3}, "bar": {"type": "array"}},
           "patternProperties": {"f.o": {"minItems": 2}},
           "additionalProperties": {"type": "integer"}})",
       {{R"({"foo": [1, 2]})", true},
        {R"({"foo": [1, 2, 3, 4]})", false},
        {R"({"foo": []})", false},
        {R"({"fxo": [1, 2]})", true},
        {R"({"fxo": []})", false},
        {R"({"bar": []})", true},
        {R"({"quux": 3})", true},
        {R"({"quux": "foo"})", false}}},
      {"boolean subschemas",
       R"({"properties": {"foo": true, "bar": false}})",
       {{"{}", true}, {R"({"foo": 1})", true}, {R"({"bar": 2})", false}, {R"({"foo": 1, "bar": 2})", false}}},
      {"escaped characters in names",
       R"({"properties": {"foo\nbar": {"type": "number"}, "foo\"bar": {"type": "number"},
                          "foo\\bar": {"type": "number"}, "foo\tbar": {"type": "number"}}})",
       {{R"({"foo\nbar": 1, "foo\"bar": 1, "foo\\bar": 1, "foo\tbar": 1})", true},
        {R"({"foo\nbar": "1", "foo\"bar": 1})", false},
        {R"({"foo\\bar": "1"})", false}}},
      {"null-valued instance property",
       R"({"properties": {"foo": {"type": "null"}}})",
       {{R"({"foo": null})", true}}},
      {"names that are JavaScript object members",
       R"({"properties": {"__proto__": {"type": "number"},
                          "toString": {"properties": {"length": {"type": "string"}}},
                          "constructor": {"type": "number"}}})",
       {{"{}", true},
        {R"({"__proto__": "foo"})", false},
        {R"({"toString": {"length": 37}})", false},
        {R"({"constructor": {"length": 37}})", false},
        {R"({"__proto__": 12, "toString": {"length": "foo"}, "constructor": 37})", true}}},
  });
}

TEST(JsonSchemaKeywords, Required) {
  run_groups({
      {"required",
       R"({"properties": {"foo": {}, "bar": {}}, "required": ["foo"]})",
       {{R"({"foo": 1})", true}, {R"({"bar": 1})", false}, {"[]", true}, {R"("")", true}, {"12", true}}},
      {"not required by default", R"({"properties": {"foo": {}}})", {{"{}", true}}},
      {"empty list", R"({"required": []})", {{"{}", true}}},
      {"escaped names",
       R"({"required": ["foo\nbar", "foo\"bar"]})",
       {{R"({"foo\nbar": 1, "foo\"bar": 1})", true}, {R"({"foo\nbar": "1"})", false}}},
      {"JavaScript object member names",
       R"({"required": ["__proto__", "toString", "constructor"]})",
       {{"{}", false},
        {R"({"__proto__": "foo"})", false},
        {R"({"__proto__": 12, "toString": {"length": "foo"}, "constructor": 37})", true}}},
  });
}

TEST(JsonSchemaKeywords, AdditionalProperties) {
  run_groups({
      {"false",
       R"({"properties": {"foo": {}, "bar": {}}, "patternProperties": {"^v": {}}, "additionalProperties": false})",
       {{R"({"foo": 1})", true},
        {R"({"foo": 1, "bar": 2, "quux": "boom"})", false},
        {"[1, 2, 3]", true},
        {R"("foobarbaz")", true},
        {"12", true},
        {R"({"foo": 1, "vroom": 2})", true}}},
      {"non-ASCII pattern",
       R"({"patternProperties": {"^á": {}}, "additionalProperties": false})",
       {{R"({"ármányos": 2})", true}, {R"({"élmény": 2})", false}}},
      {"schema",
       R"({"properties": {"foo": {}, "bar": {}}, "additionalProperties": {"type": "boolean"}})",
       {{R"({"foo": 1, "bar": 2, "quux": true})", true}, {R"({"foo": 1, "bar": 2, "quux": 12})", false}}},
      {"alone",
       R"({"additionalProperties": {"type": "boolean"}})",
       {{R"({"foo": true})", true}, {R"({"foo": 1})", false}}},
      {"absent allows anything",
       R"({"properties": {"foo": {}, "bar": {}}})",
       {{R"({"foo": 1, "bar": 2, "quux": true})", true}}},
      {"does not see properties of allOf",
       R"({"allOf": [{"properties": {"foo": {}}}], "additionalProperties": {"type": "boolean"}})",
       {{R"({"foo": 1, "bar": true})", false}}},
      {"null values", R"({"additionalProperties": {"type": "null"}})", {{R"({"foo": null})", true}}},
  });
}

TEST(JsonSchemaKeywords, PatternProperties) {
  run_groups({
      {"one pattern",
       R"({"patternProperties": {"f.*o": {"type": "integer"}}})",
       {{R"({"foo": 1})", true},
        {R"({"foo": 1, "foooooo": 2})", true},
        {R"({"foo": "bar", "fooooo": 2})", false},
        {R"({"foo": "bar", "foooooo": "baz"})", false},
        {R"(["foo"])", true},
        {R"("foo")", true},
        {"12", true}}},
      {"several match at once",
       R"({"patternProperties": {"a*": {"type": "integer"}, "aaa*": {"maximum": 20}}})",
       {{R"({"a": 21})", true},
        {R"({"aaaa": 18})", true},
        {R"({"a": 21, "aaaa": 18})", true},
        {R"({"a": "bar"})", false},
        {R"({"aaaa": 31})", false},
        {R"({"aaa": "foo", "aaaa": 31})", false}}},
      {"not anchored",
       R"({"patternProperties": {"[0-9]{2,}": {"type": "boolean"}, "X_": {"type": "string"}}})",
       {{R"({"answer 1": "42"})", true},
        {R"({"a31b": null})", false},
        {R"({"a_x_3": 3})", true},
        {R"({"a_X_3": 3})", false}}},
      {"boolean subschemas",
       R"({"patternProperties": {"f.*": true, "b.*": false}})",
       {{R"({"foo": 1})", true},
        {R"({"bar": 2})", false},
        {R"({"foo": 1, "bar": 2})", false},
        {R"({"foobar": 1})", false},
        {"{}", true}}},
      {"null values",
       R"({"patternProperties": {"^.*bar$": {"type": "null"}}})",
       {{R"({"foobar": null})", true}}},
  });
}

TEST(JsonSchemaKeywords, PropertyNames) {
  run_groups({
      {"maxLength",
       R"({"propertyNames": {"maxLength": 3}})",
       {{R"({"f": {}, "foo": {}})", true},
        {R"({"foo": {}, "foobar": {}})", false},
        {"{}", true},
        {"[1, 2, 3, 4]", true},
        {R"("foobar")", true},
        {"12", true}}},
      {"pattern",
       R"({"propertyNames": {"pattern": "^a+$"}})",
       {{R"({"a": {}, "aa": {}, "aaa": {}})", true}, {R"({"aaA": {}})", false}, {"{}", true}}},
      {"true", R"({"propertyNames": true})", {{R"({"foo": 1})", true}, {"{}", true}}},
      {"false", R"({"propertyNames": false})", {{R"({"foo": 1})", false}, {"{}", true}}},
      {"const",
       R"({"propertyNames": {"const": "foo"}})",
       {{R"({"foo": 1})", true}, {R"({"bar": 1})", false}}},
      {"enum",
       R"({"propertyNames": {"enum": ["foo", "bar"]}})",
       {{R"({"foo": 1, "bar": 2})", true}, {R"({"foo": 1, "baz": 2})", false}, {"{}", true}}},
  });
}

TEST(JsonSchemaKeywords, PropertyCounts) {
  run_groups({
      {"maxProperties",
       R"({"maxProperties": 2})",
       {{R"({"foo": 1})", true},
        {R"({"foo": 1, "bar": 2})", true},
        {R"({"foo": 1, "bar": 2, "baz": 3})", false},
        {"[1, 2, 3]", true},
        {R"("foobar")", true},
        {"12", true}}},
      {"maxProperties as a float",
       R"({"maxProperties": 2.0})",
       {{R"({"foo": 1, "bar": 2, "baz": 3})", false}}},
      {"maxProperties 0", R"({"maxProperties": 0})", {{"{}", true}, {R"({"foo": 1})", false}}},
      {"minProperties",
       R"({"minProperties": 1})",
       {{R"({"foo": 1, "bar": 2})", true},
        {R"({"foo": 1})", true},
        {"{}", false},
        {"[]", true},
        {R"("")", true}}},
      {"minProperties as a float", R"({"minProperties": 1.0})", {{"{}", false}, {R"({"a": 1})", true}}},
  });
}

TEST(JsonSchemaKeywords, Items) {
  run_groups({
      {"schema",
       R"({"items": {"type": "integer"}})",
       {{"[1, 2, 3]", true},
        {R"([1, "x"])", false},
        {R"({"foo": "bar"})", true},
        {R"({"0": "invalid", "length": 1})", true}}},
      {"true", R"({"items": true})", {{R"([1, "foo", true])", true}, {"[]", true}}},
      {"false", R"({"items": false})", {{R"([1, "foo", true])", false}, {"[]", true}}},
      {"prefixItems then false",
       R"({"prefixItems": [{}, {}, {}], "items": false})",
       {{"[]", true}, {"[1]", true}, {"[1, 2]", true}, {"[1, 2, 3]", true}, {"[1, 2, 3, 4]", false}}},
      {"prefixItems then a schema",
       R"({"prefixItems": [{"type": "string"}], "items": {"type": "integer"}})",
       {{R"(["x", 2, 3])", true}, {R"(["x", "y"])", false}, {"[2]", false}}},
      {"null items", R"({"items": {"type": "null"}})", {{"[null]", true}, {"[null, 1]", false}}},
      {"nested",
       R"({"type": "array", "items": {"type": "array", "items": {"type": "array",
           "items": {"type": "array", "items": {"type": "number"}}}}})",
       {{"[[[[1]], [[2], [3]]], [[[4], [5], [6]]]]", true},
        {R"([[[["1"]], [[2], [3]]], [[[4], [5], [6]]]])", false},
        {"[[[1], [2], [3]], [[4], [5], [6]]]", false}}},
  });
}

TEST(JsonSchemaKeywords, PrefixItems) {
  run_groups({
      {"two schemas",
       R"({"prefixItems": [{"type": "integer"}, {"type": "string"}]})",
       {{R"([1, "foo"])", true},
        {R"(["foo", 1])", false},
        {"[1]", true},
        {R"([1, "foo", true])", true},
        {"[]", true},
        {R"({"0": "invalid", "1": "valid", "length": 2})", true}}},
      {"booleans",
       R"({"prefixItems": [true, false]})",
       {{"[1]", true}, {R"([1, "foo"])", false}, {"[]", true}}},
      {"further items allowed",
       R"({"prefixItems": [{"type": "integer"}]})",
       {{R"([1, "foo", false])", true}}},
      {"null", R"({"prefixItems": [{"type": "null"}]})", {{"[null]", true}, {"[0]", false}}},
  });
}

TEST(JsonSchemaKeywords, Draft07ItemsArray) {
  run_groups({
      {"array form",
       R"({"items": [{"type": "integer"}, {"type": "string"}]})",
       {{R"([1, "foo"])", true}, {R"(["foo", 1])", false}, {"[1]", true}, {R"([1, "foo", true])", true}}},
      {"additionalItems schema",
       R"({"items": [{}], "additionalItems": {"type": "integer"}})",
       {{"[null, 2, 3, 4]", true}, {R"([null, 2, 3, "foo"])", false}, {R"(["anything"])", true}}},
      {"additionalItems false",
       R"({"items": [{}, {}, {}], "additionalItems": false})",
       {{"[1, 2, 3]", true}, {"[1, 2, 3, 4]", false}, {"[]", true}}},
  });
}

TEST(JsonSchemaKeywords, ItemCounts) {
  run_groups({
      {"maxItems",
       R"({"maxItems": 2})",
       {{"[1]", true}, {"[1, 2]", true}, {"[1, 2, 3]", false}, {R"("foobar")", true}}},
      {"maxItems as a float", R"({"maxItems": 2.0})", {{"[1, 2, 3]", false}, {"[1]", true}}},
      {"minItems", R"({"minItems": 1})", {{"[1, 2]", true}, {"[1]", true}, {"[]", false}, {R"("")", true}}},
  });
}

TEST(JsonSchemaKeywords, UniqueItems) {
  run_groups({
      {"true",
       R"({"uniqueItems": true})",
       {{"[1, 2]", true},
        {"[1, 1]", false},
        {"[1, 1, 1]", false},
        {"[1.0, 1.00, 1]", false},
        {"[false, true]", true},
        {"[true, true]", false},
        {R"(["foo", "bar", "baz"])", true},
        {R"(["foo", "bar", "foo"])", false},
        {R"([{"foo": "bar"}, {"foo": "baz"}])", true},
        {R"([{"foo": "bar"}, {"foo": "bar"}])", false},
        {R"([{"foo": "bar", "bar": "foo"}, {"bar": "foo", "foo": "bar"}])", false},
        {R"([{"foo": {"bar": {"baz": true}}}, {"foo": {"bar": {"baz": false}}}])", true},
        {R"([{"foo": {"bar": {"baz": true}}}, {"foo": {"bar": {"baz": true}}}])", false},
        {R"([["foo"], ["bar"]])", true},
        {R"([["foo"], ["foo"]])", false},
        {R"([["foo"], ["bar"], ["foo"]])", false},
        {"[1, true]", true},
        {"[0, false]", true},
        {"[[1], [true]]", true},
        {"[[0], [false]]", true},
        {R"([[[1], "foo"], [[true], "foo"]])", true},
        {R"([{}, [1], true, null, 1, "{}"])", true},
        {R"([{}, [1], true, null, {}, 1])", false},
        {R"([{"a": false}, {"a": false}])", false},
        {R"([{"a": 1}, {"a": true}])", true},
        {"[null, null]", false},
        {R"([{"a": 1, "b": 2}, {"a": 1, "b": 3}])", true},
        {"[9007199254740992, 9007199254740993]", true},
        {"[]", true},
        {R"("not an array")", true}}},
      {"false", R"({"uniqueItems": false})", {{"[1, 1]", true}, {R"([{"a": 1}, {"a": 1}])", true}}},
      {"with prefixItems",
       R"({"prefixItems": [{"type": "boolean"}, {"type": "boolean"}], "uniqueItems": true})",
       {{"[false, true]", true}, {"[false, false]", false}, {R"([false, true, "foo", "foo"])", false}}},
  });
}

TEST(JsonSchemaKeywords, UniqueItemsInLongArraysReportsTheFirstDuplicate) {
  const auto schema = JsonSchema::compile(json{{"uniqueItems", true}});
  json items = json::array();
  for (int k = 0; k < 40; ++k) items.push_back(json{{"n", k}});
  EXPECT_EQ(schema.validate(items), std::nullopt);
  items[35] = json{{"n", 2}};
  items[30] = json{{"n", 7.0}};
  EXPECT_EQ(schema.validate(items), ": items 7 and 30 are equal, but uniqueItems is true");
  items[30] = json{{"n", 30}};
  EXPECT_EQ(schema.validate(items), ": items 2 and 35 are equal, but uniqueItems is true");
  // Short arrays are compared pairwise: the same answer.
  EXPECT_EQ(schema.validate(json::parse("[5, 1, 2, 1, 5]")),
            ": items 1 and 3 are equal, but uniqueItems is true");
}

TEST(JsonSchemaKeywords, Contains) {
  run_groups({
      {"minimum",
       R"({"contains": {"minimum": 5}})",
       {{"[3, 4, 5]", true}, {"[3, 4, 6]", true}, {"[2, 3, 4]", false}, {"[]", false}, {"{}", true}}},
      {"const",
       R"({"contains": {"const": 5}})",
       {{"[3, 4, 5]", true}, {"[5, 5, 5]", true}, {"[1, 2, 3, 4]", false}}},
      {"true", R"({"contains": true})", {{R"(["foo"])", true}, {"[]", false}}},
      {"false",
       R"({"contains": false})",
       {{R"(["foo"])", false}, {"[]", false}, {R"("not an array")", true}}},
      {"with items",
       R"({"items": {"multipleOf": 2}, "contains": {"multipleOf": 3}})",
       {{"[2, 4, 8]", false}, {"[3, 6, 9]", false}, {"[6, 12]", true}, {"[1, 5]", false}}},
      {"null", R"({"contains": {"type": "null"}})", {{"[null]", true}, {"[0]", false}}},
      {"minContains 2",
       R"({"contains": {"const": 1}, "minContains": 2})",
       {{"[]", false},
        {"[1]", false},
        {"[1, 1]", true},
        {"[1, 1, 1]", true},
        {"[2, 1, 2, 1]", true},
        {"[2, 1]", false}}},
      {"minContains 0", R"({"contains": {"const": 1}, "minContains": 0})", {{"[]", true}, {"[2]", true}}},
      {"maxContains 1",
       R"({"contains": {"const": 1}, "maxContains": 1})",
       {{"[]", false}, {"[1]", true}, {"[1, 1]", false}, {"[1, 2]", true}}},
      {"minContains 2, maxContains 3",
       R"({"contains": {"const": 1}, "minContains": 2, "maxContains": 3})",
       {{"[1]", false}, {"[1, 1]", true}, {"[1, 1, 1]", true}, {"[1, 1, 1, 1]", false}}},
      {"minContains 0, maxContains 1",
       R"({"contains": {"const": 1}, "minContains": 0, "maxContains": 1})",
       {{"[]", true}, {"[1]", true}, {"[1, 1]", false}}},
      {"minContains without contains is ignored", R"({"minContains": 1})", {{"[]", true}}},
      {"maxContains without contains is ignored", R"({"maxContains": 1})", {{"[1, 2]", true}}},
  });
}

TEST(JsonSchemaKeywords, StringLengthCountsCodePoints) {
  run_groups({
      {"maxLength",
       R"({"maxLength": 2})",
       {{R"("f")", true},
        {R"("fo")", true},
        {R"("foo")", false},
        {"100", true},
        {R"("💩💩")", true},
        {R"("ée")", true},
        {R"("\u00e9\u00e9\u00e9")", false}}},
      {"maxLength as a float", R"({"maxLength": 2.0})", {{R"("foo")", false}}},
      {"minLength",
       R"({"minLength": 2})",
       {{R"("foo")", true},
        {R"("fo")", true},
        {R"("f")", false},
        {"1", true},
        {R"("💩")", false},
        {R"("é")", false}}},
      {"a combining accent is its own code point",
       R"({"maxLength": 1})",
       {{R"("e\u0301")", false}, {R"("\u00e9")", true}, {R"("\ud83d\ude00")", true}}},
  });
  EXPECT_EQ(validate(R"({"minLength": 2})", R"("💩")"), ": string has 1 character, fewer than minLength 2");
  EXPECT_EQ(validate(R"({"maxLength": 3})", R"("日本語です")"),
            ": string has 5 characters, more than maxLength 3");
}

TEST(JsonSchemaKeywords, Pattern) {
  run_groups({
      {"anchored",
       R"({"pattern": "^a*$"})",
       {{R"("aaa")", true}, {R"("abc")", false}, {"true", true}, {"123", true}, {"null", true}}},
      {"not anchored", R"({"pattern": "a+"})", {{R"("xxaayy")", true}, {R"("xyz")", false}}},
      {"\\uXXXX escape", R"({"pattern": "^caf\\u00e9$"})", {{R"("café")", true}, {R"("cafe")", false}}},
      {"surrogate pair escape", R"({"pattern": "^\\uD83D\\uDE00$"})", {{R"("😀")", true}, {R"("x")", false}}},
      {"\\u{...} escape", R"({"pattern": "^\\u{1F600}+$"})", {{R"("😀😀")", true}, {R"("😃")", false}}},
      {"escape inside a class",
       R"({"pattern": "^[\\u0041-\\u0043]+$"})",
       {{R"("ABCA")", true}, {R"("ABD")", false}}},
      {"named group",
       R"({"pattern": "^(?<year>[0-9]{4})-(?<month>[0-9]{2})$"})",
       {{R"("2024-05")", true}, {R"("24-05")", false}}},
      {"dot matches one code point", R"({"pattern": "^.$"})", {{R"("💩")", true}, {R"("ab")", false}}},
      {"Unicode classes", R"({"pattern": "^\\p{L}+$"})", {{R"("héllo")", true}, {R"("h3llo")", false}}},
      {"\\d is ASCII", R"({"pattern": "^\\d+$"})", {{R"("42")", true}, {R"("٤٢")", false}}},
      {"\\w is ASCII", R"({"pattern": "^\\w+$"})", {{R"("a_1")", true}, {R"("é")", false}}},
      {"escaped slash and parenthesis",
       R"({"pattern": "^a\\/b\\(c\\)$"})",
       {{R"x("a/b(c)")x", true}, {R"("a/bc")", false}}},
      {"a literal (?< in a class is not a group",
       R"({"pattern": "^[(?<]+$"})",
       {{R"("(?<")", true}, {R"("a")", false}}},
  });
}

TEST(JsonSchemaKeywords, NumericBounds) {
  run_groups({
      {"minimum 1.1",
       R"({"minimum": 1.1})",
       {{"2.6", true}, {"1.1", true}, {"0.6", false}, {R"("x")", true}}},
      {"minimum -2",
       R"({"minimum": -2})",
       {{"-1", true}, {"-2", true}, {"-2.0", true}, {"-2.0001", false}, {"-3", false}, {"-3.0", false}}},
      {"maximum 3.0",
       R"({"maximum": 3.0})",
       {{"2.6", true}, {"3.0", true}, {"3", true}, {"3.5", false}, {R"("x")", true}}},
      {"maximum 300", R"({"maximum": 300})", {{"300.00", true}, {"300.5", false}}},
      {"exclusiveMinimum",
       R"({"exclusiveMinimum": 1.1})",
       {{"1.2", true}, {"1.1", false}, {"2", true}, {"1", false}}},
      {"exclusiveMaximum",
       R"({"exclusiveMaximum": 3.0})",
       {{"2.2", true}, {"3.0", false}, {"3", false}, {"3.5", false}}},
      {"minimum and exclusiveMinimum together",
       R"({"minimum": 1, "exclusiveMinimum": 1})",
       {{"1", false}, {"1.000001", true}}},
      {"2^53 + 1 is above 2^53",
       R"({"maximum": 9007199254740992})",
       {{"9007199254740992", true}, {"9007199254740993", false}, {"9007199254740992.0", true}}},
      {"largest unsigned",
       R"({"maximum": 18446744073709551615, "minimum": 18446744073709551614})",
       {{"18446744073709551615", true},
        {"18446744073709551614", true},
        {"18446744073709551613", false},
        {"1.8446744073709552e19", false}}},
      {"smallest signed",
       R"({"minimum": -9223372036854775808})",
       {{"-9223372036854775808", true}, {"-9.3e18", false}}},
      {"negative bound, unsigned value",
       R"({"maximum": -1})",
       {{"18446744073709551615", false}, {"-1", true}, {"-1.5", true}}},
      {"fractional bound, integer values",
       R"({"minimum": 0.5, "maximum": 2.5})",
       {{"0", false}, {"1", true}, {"2", true}, {"3", false}}},
      {"bound beyond 2^64",
       R"({"exclusiveMaximum": 1e20})",
       {{"18446744073709551615", true}, {"1e20", false}}},
  });
}

TEST(JsonSchemaKeywords, MultipleOf) {
  run_groups({
      {"integer",
       R"({"multipleOf": 2})",
       {{"10", true}, {"7", false}, {R"("foo")", true}, {"-4", true}, {"10.0", true}, {"10.5", false}}},
      {"integral float divisor", R"({"multipleOf": 2.0})", {{"10", true}, {"7", false}}},
      {"number", R"({"multipleOf": 1.5})", {{"0", true}, {"4.5", true}, {"35", false}, {"-3", true}}},
      {"small number", R"({"multipleOf": 0.0001})", {{"0.0075", true}, {"0.00751", false}}},
      {"decimal divisors", R"({"multipleOf": 0.01})", {{"19.99", true}, {"0.3", true}, {"0.305", false}}},
      {"0.1", R"({"multipleOf": 0.1})", {{"0.3", true}, {"0.35", false}}},
      {"float overflow", R"({"type": "integer", "multipleOf": 0.123456789})", {{"1e308", false}}},
      {"small multiple of a large integer",
       R"({"type": "integer", "multipleOf": 1e-8})",
       {{"12391239123", true}}},
      {"exact with 64-bit integers",
       R"({"multipleOf": 3})",
       {{"9223372036854775806", true},
        {"9223372036854775807", false},
        {"-9223372036854775808", false},
        {"18446744073709551615", true}}},
      {"INT64_MIN", R"({"multipleOf": 2})", {{"-9223372036854775808", true}}},
      {"divisor beyond 2^64",
       R"({"multipleOf": 1e20})",
       {{"0", true}, {"18446744073709551615", false}, {"2e20", true}}},
  });
}

TEST(JsonSchemaKeywords, AllOfAnyOfOneOfNot) {
  run_groups({
      {"allOf",
       R"({"allOf": [{"properties": {"bar": {"type": "integer"}}, "required": ["bar"]},
                     {"properties": {"foo": {"type": "string"}}, "required": ["foo"]}]})",
       {{R"({"foo": "baz", "bar": 2})", true},
        {R"({"foo": "baz"})", false},
        {R"({"bar": 2})", false},
        {R"({"foo": "baz", "bar": "quux"})", false}}},
      {"allOf with a base schema",
       R"({"properties": {"bar": {"type": "integer"}}, "required": ["bar"],
           "allOf": [{"properties": {"foo": {"type": "string"}}, "required": ["foo"]},
                     {"properties": {"baz": {"type": "null"}}, "required": ["baz"]}]})",
       {{R"({"foo": "quux", "bar": 2, "baz": null})", true},
        {R"({"foo": "quux", "baz": null})", false},
        {R"({"bar": 2, "baz": null})", false},
        {R"({"foo": "quux", "bar": 2})", false},
        {R"({"bar": 2})", false}}},
      {"allOf simple", R"({"allOf": [{"maximum": 30}, {"minimum": 20}]})", {{"25", true}, {"35", false}}},
      {"allOf true, true", R"({"allOf": [true, true]})", {{R"("foo")", true}}},
      {"allOf true, false", R"({"allOf": [true, false]})", {{R"("foo")", false}}},
      {"anyOf",
       R"({"anyOf": [{"type": "integer"}, {"minimum": 2}]})",
       {{"1", true}, {"2.5", true}, {"3", true}, {"1.5", false}}},
      {"anyOf with a base schema",
       R"({"type": "string", "anyOf": [{"maxLength": 2}, {"minLength": 4}]})",
       {{"3", false}, {R"("foobar")", true}, {R"("foo")", false}}},
      {"anyOf true, false", R"({"anyOf": [true, false]})", {{R"("foo")", true}}},
      {"anyOf false, false", R"({"anyOf": [false, false]})", {{R"("foo")", false}}},
      {"anyOf complex",
       R"({"anyOf": [{"properties": {"bar": {"type": "integer"}}, "required": ["bar"]},
                     {"properties": {"foo": {"type": "string"}}, "required": ["foo"]}]})",
       {{R"({"bar": 2})", true},
        {R"({"foo": "baz"})", true},
        {R"({"foo": "baz", "bar": 2})", true},
        {R"({"foo": 2, "bar": "quux"})", false}}},
      {"anyOf nested", R"({"anyOf": [{"anyOf": [{"type": "null"}]}]})", {{"null", true}, {"123", false}}},
      {"oneOf",
       R"({"oneOf": [{"type": "integer"}, {"minimum": 2}]})",
       {{"1", true}, {"2.5", true}, {"3", false}, {"1.5", false}}},
      {"oneOf with a base schema",
       R"({"type": "string", "oneOf": [{"minLength": 2}, {"maxLength": 4}]})",
       {{"3", false}, {R"("foobar")", true}, {R"("foo")", false}}},
      {"oneOf all true", R"({"oneOf": [true, true, true]})", {{R"("foo")", false}}},
      {"oneOf one true", R"({"oneOf": [true, false, false]})", {{R"("foo")", true}}},
      {"oneOf two true", R"({"oneOf": [true, true, false]})", {{R"("foo")", false}}},
      {"oneOf none true", R"({"oneOf": [false, false, false]})", {{R"("foo")", false}}},
      {"oneOf complex",
       R"({"oneOf": [{"properties": {"bar": {"type": "integer"}}, "required": ["bar"]},
                     {"properties": {"foo": {"type": "string"}}, "required": ["foo"]}]})",
       {{R"({"bar": 2})", true},
        {R"({"foo": "baz"})", true},
        {R"({"foo": "baz", "bar": 2})", false},
        {R"({"foo": 2, "bar": "quux"})", false}}},
      {"oneOf with an empty schema",
       R"({"oneOf": [{"type": "number"}, {}]})",
       {{R"("foo")", true}, {"123", false}}},
      {"oneOf with required",
       R"({"type": "object", "oneOf": [{"required": ["foo", "bar"]}, {"required": ["foo", "baz"]}]})",
       {{R"({"bar": 2})", false},
        {R"({"foo": 1, "bar": 2})", true},
        {R"({"foo": 1, "baz": 3})", true},
        {R"({"foo": 1, "bar": 2, "baz": 3})", false}}},
      {"not", R"({"not": {"type": "integer"}})", {{R"("foo")", true}, {"1", false}}},
      {"not several types",
       R"({"not": {"type": ["integer", "boolean"]}})",
       {{R"("foo")", true}, {"1", false}, {"true", false}}},
      {"not more complex",
       R"({"not": {"type": "object", "properties": {"foo": {"type": "string"}}}})",
       {{"1", true}, {R"({"foo": 1})", true}, {R"({"foo": "bar"})", false}}},
      {"forbidden property",
       R"({"properties": {"foo": {"not": {}}}})",
       {{R"({"foo": 1, "bar": 2})", false}, {R"({"bar": 1, "baz": 2})", true}}},
      {"not true", R"({"not": true})", {{R"("foo")", false}}},
      {"not false", R"({"not": false})", {{R"("foo")", true}}},
      {"double negation", R"({"not": {"not": {}}})", {{R"("foo")", true}}},
  });
}

TEST(JsonSchemaKeywords, IfThenElse) {
  run_groups({
      {"if alone has no effect", R"({"if": {"const": 0}})", {{"0", true}, {R"("hello")", true}}},
      {"then alone has no effect", R"({"then": {"const": 0}})", {{"0", true}, {R"("hello")", true}}},
      {"else alone has no effect", R"({"else": {"const": 0}})", {{"0", true}, {R"("hello")", true}}},
      {"if and then",
       R"({"if": {"exclusiveMaximum": 0}, "then": {"minimum": -10}})",
       {{"-1", true}, {"-100", false}, {"3", true}}},
      {"if and else",
       R"({"if": {"exclusiveMaximum": 0}, "else": {"multipleOf": 2}})",
       {{"-1", true}, {"4", true}, {"3", false}}},
      {"if, then and else",
       R"({"if": {"exclusiveMaximum": 0}, "then": {"minimum": -10}, "else": {"multipleOf": 2}})",
       {{"-1", true}, {"-100", false}, {"4", true}, {"3", false}}},
      {"split across allOf",
       R"({"allOf": [{"if": {"exclusiveMaximum": 0}}, {"then": {"minimum": -10}}, {"else": {"multipleOf": 2}}]})",
       {{"-100", true}, {"3", true}}},
      {"if true",
       R"({"if": true, "then": {"const": "then"}, "else": {"const": "else"}})",
       {{R"("then")", true}, {R"("else")", false}}},
      {"if false",
       R"({"if": false, "then": {"const": "then"}, "else": {"const": "else"}})",
       {{R"("then")", false}, {R"("else")", true}}},
      {"keyword order does not matter",
       R"({"then": {"const": "yes"}, "else": {"const": "other"}, "if": {"maxLength": 4}})",
       {{R"("yes")", true}, {R"("other")", true}, {R"("no")", false}, {R"("invalid")", false}}},
  });
}

TEST(JsonSchemaKeywords, BooleanSchemas) {
  const std::vector<std::string_view> instances = {"1",  R"("foo")",   "true", "null", R"({"foo": "bar"})",
                                                   "{}", R"(["foo"])", "[]"};
  std::vector<Case> accepted;
  std::vector<Case> rejected;
  for (const auto instance : instances) {
    accepted.push_back({instance, true});
    rejected.push_back({instance, false});
  }
  run_groups({{"true", "true", accepted}, {"false", "false", rejected}});
}

TEST(JsonSchemaKeywords, AnnotationsAreIgnored) {
  run_groups({
      {"annotations",
       R"({"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "https://example.com/s",
           "$comment": "c", "title": "t", "description": "d", "default": 1, "examples": [1],
           "deprecated": true, "readOnly": false, "writeOnly": false, "type": "string"})",
       {{R"("x")", true}, {"1", false}}},
      {"format is an annotation", R"({"format": "email"})", {{R"("not an email")", true}, {"12", true}}},
      {"draft-07 $schema",
       R"({"$schema": "http://json-schema.org/draft-07/schema#", "definitions": {"a": {"type": "integer"}},
           "$ref": "#/definitions/a"})",
       {{"1", true}, {R"("1")", false}}},
  });
}

TEST(JsonSchemaRefs, LocalReferences) {
  run_groups({
      {"root pointer",
       R"({"properties": {"foo": {"$ref": "#"}}, "additionalProperties": false})",
       {{R"({"foo": false})", true},
        {R"({"foo": {"foo": false}})", true},
        {R"({"bar": false})", false},
        {R"({"foo": {"bar": false}})", false}}},
      {"pointer to a property",
       R"({"properties": {"foo": {"type": "integer"}, "bar": {"$ref": "#/properties/foo"}}})",
       {{R"({"bar": 3})", true}, {R"({"bar": true})", false}}},
      {"pointer into an array",
       R"({"prefixItems": [{"type": "integer"}, {"$ref": "#/prefixItems/0"}]})",
       {{"[1, 2]", true}, {R"([1, "foo"])", false}}},
      {"escaped pointers",
       R"({"$defs": {"tilde~field": {"type": "integer"}, "slash/field": {"type": "integer"},
                     "percent%field": {"type": "integer"}},
           "properties": {"tilde": {"$ref": "#/$defs/tilde~0field"},
                          "slash": {"$ref": "#/$defs/slash~1field"},
                          "percent": {"$ref": "#/$defs/percent%25field"}}})",
       {{R"({"slash": "aoeu"})", false},
        {R"({"tilde": "aoeu"})", false},
        {R"({"percent": "aoeu"})", false},
        {R"({"tilde": 123})", true},
        {R"({"slash": 123})", true},
        {R"({"percent": 123})", true}}},
      {"chained",
       R"({"$defs": {"a": {"type": "integer"}, "b": {"$ref": "#/$defs/a"}, "c": {"$ref": "#/$defs/b"}},
           "$ref": "#/$defs/c"})",
       {{"5", true}, {R"("a")", false}}},
      {"siblings of $ref apply",
       R"({"$defs": {"reffed": {"type": "array"}},
           "properties": {"foo": {"$ref": "#/$defs/reffed", "maxItems": 2}}})",
       {{R"({"foo": []})", true}, {R"({"foo": [1, 2, 3]})", false}, {R"({"foo": "string"})", false}}},
      {"property named $ref",
       R"({"properties": {"$ref": {"type": "string"}}})",
       {{R"({"$ref": "a"})", true}, {R"({"$ref": 2})", false}}},
      {"property named $ref holding a reference",
       R"({"properties": {"$ref": {"$ref": "#/$defs/is-string"}}, "$defs": {"is-string": {"type": "string"}}})",
       {{R"({"$ref": "a"})", true}, {R"({"$ref": 2})", false}}},
      {"to true", R"({"$ref": "#/$defs/bool", "$defs": {"bool": true}})", {{R"("foo")", true}}},
      {"to false", R"({"$ref": "#/$defs/bool", "$defs": {"bool": false}})", {{R"("foo")", false}}},
      {"draft-07 definitions",
       R"({"definitions": {"positiveInteger": {"type": "integer", "exclusiveMinimum": 0}},
           "properties": {"n": {"$ref": "#/definitions/positiveInteger"}}})",
       {{R"({"n": 3})", true}, {R"({"n": 0})", false}, {R"({"n": 1.5})", false}}},
      {"reference into an annotation, compiled on demand",
       R"({"examples": [{"type": "string"}], "$ref": "#/examples/0"})",
       {{R"("s")", true}, {"1", false}}},
  });
}

TEST(JsonSchemaRefs, RecursiveSchemas) {
  const std::string_view tree = R"({
    "type": "object",
    "properties": {
      "meta": {"type": "string"},
      "nodes": {"type": "array", "items": {"$ref": "#/$defs/node"}}
    },
    "required": ["meta", "nodes"],
    "$defs": {
      "node": {
        "type": "object",
        "properties": {"value": {"type": "number"}, "subtree": {"$ref": "#"}},
        "required": ["value"]
      }
    }
  })";
  run_groups({
      {"tree",
       tree,
       {{R"({"meta": "root", "nodes": [{"value": 1, "subtree": {"meta": "child", "nodes": [{"value": 1.1}, {"value": 1.2}]}},
                                       {"value": 2, "subtree": {"meta": "child", "nodes": [{"value": 2.1}]}}]})",
         true},
        {R"({"meta": "root", "nodes": [{"value": 1, "subtree": {"meta": "child", "nodes": [{"value": "string is invalid"}]}}]})",
         false}}},
      {"linked list",
       R"({"$defs": {"list": {"type": ["object", "null"], "properties": {"head": {"type": "integer"},
                                                                           "tail": {"$ref": "#/$defs/list"}},
                               "required": ["head", "tail"], "additionalProperties": false}},
           "$ref": "#/$defs/list"})",
       {{"null", true},
        {R"({"head": 1, "tail": {"head": 2, "tail": null}})", true},
        {R"({"head": 1, "tail": {"head": "x", "tail": null}})", false},
        {R"({"head": 1, "tail": {"head": 2}})", false}}},
      {"mutual recursion through the instance",
       R"({"$defs": {"a": {"type": "object", "properties": {"b": {"$ref": "#/$defs/b"}}},
                     "b": {"type": "array", "items": {"$ref": "#/$defs/a"}}},
           "$ref": "#/$defs/a"})",
       {{R"({"b": [{"b": []}, {}]})", true}, {R"({"b": [{"b": [1]}]})", false}}},
  });
  EXPECT_EQ(
      validate(
          tree,
          R"({"meta": "root", "nodes": [{"value": 1, "subtree": {"meta": "child", "nodes": [{"value": "x"}]}}]})"),
      "/nodes/0/subtree/nodes/0/value: expected number, got string \"x\"");
}

TEST(JsonSchemaRefs, CompileErrors) {
  EXPECT_EQ(compile_error(R"({"$ref": "other.json"})"),
            R"(/$ref: only local references ("#" or "#/...") are supported, got "other.json")");
  EXPECT_EQ(
      compile_error(R"({"$ref": "https://example.com/s.json#/$defs/a"})"),
      R"(/$ref: only local references ("#" or "#/...") are supported, got "https://example.com/s.json#/$defs/a")");
  EXPECT_EQ(
      compile_error(R"({"$ref": "#foo"})"),
      R"(/$ref: anchor references such as "#foo" are not supported; use a JSON pointer such as "#/$defs/name")");
  EXPECT_EQ(compile_error(R"({"properties": {"a": {"$ref": "#/$defs/missing"}}})"),
            R"(/properties/a/$ref: reference "#/$defs/missing" points to nothing in this schema)");
  EXPECT_EQ(compile_error(R"({"$defs": {"a": {"type": "string"}}, "$ref": "#/$defs/a/type"})"),
            R"(/$ref: reference "#/$defs/a/type" points to string "string", not a schema)");
  EXPECT_EQ(compile_error(R"({"$ref": "#%zz"})"), R"(/$ref: bad percent-encoding in reference "%zz")");
  EXPECT_EQ(compile_error(R"({"$ref": 5})"), "/$ref: must be a string, got number 5");
  const std::string bad_pointer = compile_error(R"({"$ref": "#/$defs/a~2"})");
  EXPECT_EQ(bad_pointer.rfind(R"(/$ref: reference "#/$defs/a~2" is not a valid JSON pointer: )", 0), 0U)
      << bad_pointer;
}

TEST(JsonSchemaRefs, CyclesThatNeverDescendAreRejected) {
  EXPECT_EQ(compile_error(R"({"$ref": "#"})"),
            "/$ref: reference cycle that never moves into the instance: # -> #");
  EXPECT_EQ(compile_error(R"({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"allOf": [{"$ref": "#/$defs/a"}]}},
                              "$ref": "#/$defs/a"})"),
            "/$defs/b/allOf/0/$ref: reference cycle that never moves into the instance: "
            "#/$defs/a -> #/$defs/b -> #/$defs/b/allOf/0 -> #/$defs/a");
  EXPECT_EQ(compile_error(R"({"not": {"$ref": "#"}})"),
            "/not/$ref: reference cycle that never moves into the instance: # -> #/not -> #");
  EXPECT_EQ(compile_error(R"({"anyOf": [true, {"$ref": "#"}]})"),
            "/anyOf/1/$ref: reference cycle that never moves into the instance: # -> #/anyOf/1 -> #");
  // Unused definitions are checked too.
  EXPECT_EQ(compile_error(R"({"$defs": {"loop": {"if": {"$ref": "#/$defs/loop"}}}})"),
            "/$defs/loop/if/$ref: reference cycle that never moves into the instance: "
            "#/$defs/loop -> #/$defs/loop/if -> #/$defs/loop");
  // Recursion that moves into the instance is fine.
  EXPECT_EQ(compile_error(R"({"items": {"$ref": "#"}, "properties": {"a": {"$ref": "#"}}})"), "compiled");
}

TEST(JsonSchemaMessages, PointerAndReason) {
  EXPECT_EQ(validate(R"({"properties": {"label": {"enum": ["pos", "neg"]}}})", R"({"label": "maybe"})"),
            R"(/label: value "maybe" is not one of ["pos","neg"])");
  EXPECT_EQ(validate(R"({"type": "object"})", "[1]"), ": expected object, got array");
  EXPECT_EQ(validate(R"({"type": ["string", "null"]})", "3"), ": expected null or string, got number 3");
  EXPECT_EQ(validate(R"({"type": ["string", "integer", "array"]})", "1.5"),
            ": expected array, integer or string, got number 1.5");
  EXPECT_EQ(validate(R"({"type": "integer"})", "true"), ": expected integer, got boolean true");
  EXPECT_EQ(validate(R"({"type": "string"})", "null"), ": expected string, got null");
  EXPECT_EQ(validate(R"({"properties": {"user": {"required": ["id", "name"]}}})", R"({"user": {"id": 1}})"),
            R"(/user: missing required property "name")");
  EXPECT_EQ(
      validate(R"({"properties": {"a": {}}, "additionalProperties": false})", R"({"a": 1, "extra": 2})"),
      R"(/extra: additional property "extra" is not allowed)");
  EXPECT_EQ(validate(R"({"prefixItems": [{}, {}], "items": false})", "[1, 2, 3]"),
            "/2: item is not allowed: the array may have at most 2 items");
  EXPECT_EQ(validate(R"({"items": false})", "[1]"),
            "/0: item is not allowed: the array may have at most 0 items");
  EXPECT_EQ(validate(R"({"properties": {"items": {"items": {"properties": {"price": {"minimum": 0}}}}}})",
                     R"({"items": [{"price": 1}, {"price": -1}]})"),
            "/items/1/price: value -1 is less than minimum 0");
  EXPECT_EQ(validate(R"({"additionalProperties": {"type": "integer"}})", R"({"a/b": 1, "m~n": "x"})"),
            R"(/m~0n: expected integer, got string "x")");
  EXPECT_EQ(validate(R"({"additionalProperties": {"type": "integer"}})", R"({"a/b": "x"})"),
            R"(/a~1b: expected integer, got string "x")");
  EXPECT_EQ(validate("false", "1"), ": no value is allowed here (the schema is false)");
  EXPECT_EQ(validate(R"({"properties": {"a": false}})", R"({"a": 1})"),
            "/a: no value is allowed here (the schema is false)");
}

TEST(JsonSchemaMessages, EachKeyword) {
  const std::vector<std::tuple<std::string_view, std::string_view, std::string_view>> cases = {
      {R"({"const": {"a": 1}})", R"({"a": 2})", R"(: value {"a":2} is not the constant {"a":1})"},
      {R"({"const": "x"})", R"("y")", R"(: value "y" is not the constant "x")"},
      {R"({"maximum": 10})", "11", ": value 11 is greater than maximum 10"},
      {R"({"exclusiveMinimum": 0})", "0", ": value 0 is not greater than exclusiveMinimum 0"},
      {R"({"exclusiveMaximum": 1.5})", "1.5", ": value 1.5 is not less than exclusiveMaximum 1.5"},
      {R"({"multipleOf": 0.5})", "0.7", ": value 0.7 is not a multiple of 0.5"},
      {R"({"pattern": "^[a-z]+$"})", R"("Abc")", R"(: string "Abc" does not match pattern "^[a-z]+$")"},
      {R"({"minItems": 2})", "[1]", ": array has 1 item, fewer than minItems 2"},
      {R"({"maxItems": 1})", "[1, 2]", ": array has 2 items, more than maxItems 1"},
      {R"({"uniqueItems": true})", R"([{"a": 1}, 2, {"a": 1.0}])",
       ": items 0 and 2 are equal, but uniqueItems is true"},
      {R"({"contains": {"type": "string"}})", "[1, 2]", ": no item matches the contains schema"},
      {R"({"contains": {"type": "string"}, "minContains": 2})", R"([1, "a"])",
       ": 1 item matches the contains schema, fewer than minContains 2"},
      {R"({"contains": {"type": "string"}, "maxContains": 1})", R"(["a", "b"])",
       ": 2 items match the contains schema, more than maxContains 1"},
      {R"({"minProperties": 2})", R"({"a": 1})", ": object has 1 property, fewer than minProperties 2"},
      {R"({"maxProperties": 1})", R"({"a": 1, "b": 2})",
       ": object has 2 properties, more than maxProperties 1"},
      {R"({"propertyNames": {"pattern": "^[a-z]+$"}})", R"({"ok": 1, "Bad": 2})",
       R"(: invalid property name "Bad": string "Bad" does not match pattern "^[a-z]+$")"},
      {R"({"anyOf": [{"type": "string"}, {"properties": {"a": {"type": "integer"}}}]})", R"({"a": "x"})",
       R"(: value matches none of the anyOf schemas (0: expected string, got object; 1: /a: expected integer, got string "x"))"},
      {R"({"oneOf": [{"minimum": 0}, {"maximum": 10}, {"type": "integer"}]})", "5",
       ": value matches more than one oneOf schema (0 and 1)"},
      {R"({"oneOf": [{"type": "string"}, {"type": "boolean"}]})", "5",
       ": value matches none of the oneOf schemas (0: expected string, got number 5; 1: expected "
       "boolean, got number 5)"},
      {R"({"not": {"type": "integer"}})", "5", R"(: value must not match the "not" schema)"},
      {R"({"if": {"type": "integer"}, "then": {"minimum": 10}, "else": {"type": "string"}})", "5",
       ": value 5 is less than minimum 10"},
      {R"({"if": {"type": "integer"}, "then": {"minimum": 10}, "else": {"type": "string"}})", "5.5",
       ": expected string, got number 5.5"},
      {R"({"allOf": [{"type": "number"}, {"maximum": 3}]})", "4", ": value 4 is greater than maximum 3"},
      {R"({"$defs": {"n": {"type": "integer"}}, "properties": {"x": {"$ref": "#/$defs/n"}}})",
       R"({"x": "1"})", R"(/x: expected integer, got string "1")"},
  };
  for (const auto& [schema, instance, message] : cases) {
    EXPECT_EQ(validate(schema, instance), message) << schema << " with " << instance;
  }
}

TEST(JsonSchemaMessages, FirstViolationIsDeterministic) {
  // Members are checked in key order; within a schema, keywords in a fixed order (type, const,
  // enum, the type's own keywords, then $ref and the combinators).
  const std::string_view schema =
      R"({"properties": {"b": {"type": "string"}, "a": {"type": "string"}}, "required": ["z"]})";
  EXPECT_EQ(validate(schema, R"({"b": 1, "a": 2, "z": 0})"), "/a: expected string, got number 2");
  EXPECT_EQ(validate(schema, R"({"b": 1, "a": 2})"), R"(: missing required property "z")");
  EXPECT_EQ(validate(R"({"type": "string", "enum": ["a"]})", "1"), ": expected string, got number 1");
}

TEST(JsonSchemaMessages, LongValuesAreShortened) {
  const std::string long_text(5000, 'x');
  const json schema = json{{"enum", json::array({"a", "b"})}};
  const auto message = JsonSchema::compile(schema).validate(json(long_text));
  ASSERT_TRUE(message.has_value());
  EXPECT_LT(message->size(), 200U);
  EXPECT_EQ(message->rfind(": value \"xxxx", 0), 0U) << *message;
  EXPECT_NE(message->find("\xE2\x80\xA6\" is not one of [\"a\",\"b\"]"), std::string::npos) << *message;

  json options = json::array();
  for (int k = 0; k < 200; ++k) options.push_back("option-" + std::to_string(k));
  const auto list_message = JsonSchema::compile(json{{"enum", options}}).validate(json("nope"));
  ASSERT_TRUE(list_message.has_value());
  EXPECT_LT(list_message->size(), 300U);

  json branches = json::array();
  for (int k = 0; k < 50; ++k) branches.push_back(json{{"const", long_text + std::to_string(k)}});
  const auto branch_message = JsonSchema::compile(json{{"anyOf", branches}}).validate(json(1));
  ASSERT_TRUE(branch_message.has_value());
  EXPECT_LT(branch_message->size(), 1400U);
  EXPECT_NE(branch_message->find("value matches none of the anyOf schemas (0: value 1 is not the constant"),
            std::string::npos);
}

TEST(JsonSchemaMessages, InvalidUtf8InProgrammaticValuesDoesNotThrow) {
  const json instance = json{{"k", std::string("bad \xFF byte")}};
  const auto message =
      JsonSchema::compile(json::parse(R"({"properties": {"k": {"enum": ["a"]}}})")).validate(instance);
  ASSERT_TRUE(message.has_value());
  EXPECT_EQ(*message, "/k: value \"bad \xEF\xBF\xBD byte\" is not one of [\"a\"]");
}

TEST(JsonSchemaCompile, Errors) {
  const std::vector<std::pair<std::string_view, std::string_view>> cases = {
      {"42", ": a schema must be an object or a boolean, got number 42"},
      {"[]", ": a schema must be an object or a boolean, got array"},
      {R"({"properties": {"a": {"nullable": true}}})",
       R"(/properties/a/nullable: unknown keyword "nullable")"},
      {R"({"dependentRequired": {}})", R"(/dependentRequired: keyword "dependentRequired" is not supported)"},
      {R"({"unevaluatedProperties": false})",
       R"(/unevaluatedProperties: keyword "unevaluatedProperties" is not supported)"},
      {R"({"$anchor": "x"})", R"(/$anchor: keyword "$anchor" is not supported)"},
      {R"({"type": "strng"})",
       R"(/type: unknown type "strng" (expected null, boolean, object, array, number, integer or string))"},
      {R"({"type": ["string", "string"]})", R"(/type/1: type "string" is listed twice)"},
      {R"({"type": []})", "/type: must be a type name or a non-empty array of them, got array"},
      {R"({"type": [1]})", "/type/0: must be a type name, got number 1"},
      {R"({"minLength": -1})", "/minLength: must be a non-negative integer, got number -1"},
      {R"({"maxItems": 1.5})", "/maxItems: must be a non-negative integer, got number 1.5"},
      {R"({"minProperties": "2"})", R"(/minProperties: must be a non-negative integer, got string "2")"},
      {R"({"exclusiveMinimum": true})",
       R"(/exclusiveMinimum: the draft-04 boolean form is not supported; give the bound itself, e.g. "exclusiveMinimum": 0)"},
      {R"({"maximum": 5, "exclusiveMaximum": false})",
       R"(/exclusiveMaximum: the draft-04 boolean form is not supported; give the bound itself, e.g. "exclusiveMaximum": 0)"},
      {R"({"minimum": "0"})", R"(/minimum: must be a number, got string "0")"},
      {R"({"multipleOf": 0})", "/multipleOf: must be greater than 0, got 0"},
      {R"({"multipleOf": -1.5})", "/multipleOf: must be greater than 0, got -1.5"},
      {R"({"pattern": 5})", "/pattern: must be a string, got number 5"},
      {R"({"uniqueItems": 1})", "/uniqueItems: must be a boolean, got number 1"},
      {R"({"properties": {"a": 1}})", "/properties/a: a schema must be an object or a boolean, got number 1"},
      {R"({"properties": []})", "/properties: must be an object, got array"},
      {R"({"items": {"properties": {"x/y": {"minimum": "a"}}}})",
       R"(/items/properties/x~1y/minimum: must be a number, got string "a")"},
      {R"({"required": "a"})", R"(/required: must be an array of property names, got string "a")"},
      {R"({"required": ["a", 1]})", "/required/1: must be a property name, got number 1"},
      {R"({"required": ["a", "a"]})", R"(/required/1: property "a" is listed twice)"},
      {R"({"enum": "a"})", R"(/enum: must be an array, got string "a")"},
      {R"({"allOf": []})", "/allOf: must be a non-empty array of schemas, got array"},
      {R"({"anyOf": {}})", "/anyOf: must be a non-empty array of schemas, got object"},
      {R"({"oneOf": [{}, 3]})", "/oneOf/1: a schema must be an object or a boolean, got number 3"},
      {R"({"prefixItems": []})", "/prefixItems: must be a non-empty array of schemas, got array"},
      {R"({"not": null})", "/not: a schema must be an object or a boolean, got null"},
      {R"({"$defs": {"a": {"type": "object", "minProperties": -2}}})",
       "/$defs/a/minProperties: must be a non-negative integer, got number -2"},
      {R"({"definitions": []})", "/definitions: must be an object, got array"},
      {R"({"additionalItems": false})",
       "/additionalItems: additionalItems only applies after an array-form items (draft-07); with "
       "prefixItems, use "
       "items for the remaining items"},
      {R"({"items": {}, "additionalItems": {}})",
       "/additionalItems: additionalItems only applies after an array-form items (draft-07); with "
       "prefixItems, use "
       "items for the remaining items"},
      {R"({"items": [{}], "prefixItems": [{}]})",
       "/items: the array form of items (draft-07) cannot be combined with prefixItems; make items the "
       "schema for "
       "the items after prefixItems"},
  };
  for (const auto& [schema, message] : cases) EXPECT_EQ(compile_error(schema), message) << schema;
}

TEST(JsonSchemaCompile, RegexErrors) {
  const std::string lookahead = compile_error(R"x({"pattern": "^(?=a)"})x");
  EXPECT_EQ(lookahead.rfind(R"x(/pattern: invalid regular expression "^(?=a)": )x", 0), 0U) << lookahead;
  EXPECT_NE(lookahead.find("RE2 syntax: no look-around or back-references"), std::string::npos) << lookahead;
  const std::string backreference = compile_error(R"({"pattern": "(a)\\1"})");
  EXPECT_EQ(backreference.rfind(R"(/pattern: invalid regular expression "(a)\\1": )", 0), 0U)
      << backreference;
  const std::string property = compile_error(R"({"patternProperties": {"[": {}}})");
  EXPECT_EQ(property.rfind(R"(/patternProperties/[: invalid regular expression "[": )", 0), 0U) << property;
  const std::string nested = compile_error(R"({"propertyNames": {"pattern": "(?<!x)y"}})");
  EXPECT_EQ(nested.rfind(R"(/propertyNames/pattern: invalid regular expression "(?<!x)y": )", 0), 0U)
      << nested;
}

TEST(JsonSchemaCompile, DeepSchemasAreRejected) {
  json schema = json::object();
  for (int k = 0; k < 140; ++k) schema = json{{"not", std::move(schema)}};
  const std::string message = compile_error(schema.dump());
  std::string pointer;
  for (std::size_t k = 0; k <= JsonSchema::kMaxDepth; ++k) pointer += "/not";
  EXPECT_EQ(message, pointer + ": subschemas nested deeper than 128 levels");

  json shallow = json::object();
  for (std::size_t k = 0; k < JsonSchema::kMaxDepth; ++k) shallow = json{{"not", std::move(shallow)}};
  EXPECT_NO_THROW(JsonSchema::compile(shallow));
}

TEST(JsonSchemaDepth, DeepInstancesAreRejectedWithAPointer) {
  const auto recursive = JsonSchema::compile(json::parse(R"({"items": {"$ref": "#"}})"));
  // The innermost array of 129 nested arrays sits 128 levels below the root: still allowed.
  EXPECT_EQ(recursive.validate(nested_arrays(JsonSchema::kMaxDepth + 1)), std::nullopt);
  EXPECT_EQ(recursive.validate(nested_arrays(JsonSchema::kMaxDepth + 2)),
            zeros_pointer(JsonSchema::kMaxDepth + 1) + ": instance nested deeper than 128 levels");
  EXPECT_EQ(recursive.validate(nested_arrays(5000)),
            zeros_pointer(JsonSchema::kMaxDepth + 1) + ": instance nested deeper than 128 levels");
  // A schema that does not look inside does not care how deep the instance is.
  EXPECT_EQ(JsonSchema::compile(json::parse(R"({"type": "array"})")).validate(nested_arrays(5000)),
            std::nullopt);
}

TEST(JsonSchemaDepth, TooDeepIsNotTurnedIntoValidByNot) {
  // Without the abort, the inner failure would make "not" succeed.
  const auto schema = JsonSchema::compile(json::parse(
      R"({"$defs": {"deep": {"items": {"$ref": "#/$defs/deep"}}}, "not": {"$ref": "#/$defs/deep"}})"));
  const auto message = schema.validate(nested_arrays(300));
  ASSERT_TRUE(message.has_value());
  EXPECT_NE(message->find(": instance nested deeper than 128 levels"), std::string::npos) << *message;
  const auto any_of = JsonSchema::compile(json::parse(
      R"({"$defs": {"deep": {"items": {"$ref": "#/$defs/deep"}}}, "anyOf": [{"$ref": "#/$defs/deep"}, true]})"));
  EXPECT_NE(any_of.validate(nested_arrays(300)).value_or("valid").find("instance nested deeper"),
            std::string::npos);
}

TEST(JsonSchemaDepth, DeepComparisonsAreBounded) {
  const json deep = nested_arrays(400);
  const auto unique = JsonSchema::compile(json{{"uniqueItems", true}});
  EXPECT_EQ(unique.validate(json::array({deep, deep})), ": instance nested deeper than 128 levels");
  json many = json::array();
  for (int k = 0; k < 20; ++k) many.push_back(deep);
  EXPECT_EQ(unique.validate(many), ": instance nested deeper than 128 levels");
  const auto constant = JsonSchema::compile(json{{"const", deep}});
  EXPECT_EQ(constant.validate(deep), ": instance nested deeper than 128 levels");
  // Different shallow shapes are told apart without reaching the limit.
  EXPECT_EQ(unique.validate(json::array({deep, json::array({1})})), std::nullopt);
}

TEST(JsonSchemaDepth, LongReferenceChainsAreBounded) {
  json defs = json::object();
  constexpr int kChain = 3000;
  for (int k = 0; k < kChain; ++k)
    defs["d" + std::to_string(k)] = json{{"$ref", "#/$defs/d" + std::to_string(k + 1)}};
  defs["d" + std::to_string(kChain)] = json{{"type", "string"}};
  const auto schema = JsonSchema::compile(json{{"$defs", defs}, {"$ref", "#/$defs/d0"}});
  EXPECT_EQ(schema.validate(json("s")),
            ": schema evaluation nested deeper than 1024 levels (a long chain of references?)");

  json short_defs = json::object();
  for (int k = 0; k < 100; ++k)
    short_defs["d" + std::to_string(k)] = json{{"$ref", "#/$defs/d" + std::to_string(k + 1)}};
  short_defs["d100"] = json{{"type", "string"}};
  const auto short_chain = JsonSchema::compile(json{{"$defs", short_defs}, {"$ref", "#/$defs/d0"}});
  EXPECT_EQ(short_chain.validate(json("s")), std::nullopt);
  EXPECT_EQ(short_chain.validate(json(1)), ": expected string, got number 1");
}

TEST(JsonSchemaUsage, CopiesShareTheCompiledFormAcrossThreads) {
  const auto original = JsonSchema::compile(json::parse(R"({
    "type": "object",
    "properties": {"label": {"enum": ["pos", "neg"]}, "score": {"type": "number", "minimum": 0, "maximum": 1},
                   "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$"}, "uniqueItems": true}},
    "required": ["label", "score"],
    "additionalProperties": false
  })"));
  const JsonSchema copy =
      original;  // NOLINT(performance-unnecessary-copy-initialization): copying is the point
  const json good = json::parse(R"({"label": "pos", "score": 0.5, "tags": ["a", "b"]})");
  const json bad = json::parse(R"({"label": "pos", "score": 0.5, "tags": ["a", "B"]})");
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (std::size_t t = 0; t < failures.size(); ++t) {
    threads.emplace_back([&, t] {
      const JsonSchema& schema = t % 2 == 0 ? original : copy;
      for (int k = 0; k < 500; ++k) {
        if (schema.validate(good).has_value()) ++failures[t];
        if (schema.validate(bad) != R"(/tags/1: string "B" does not match pattern "^[a-z]+$")") ++failures[t];
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
}

}  // namespace
}  // namespace kafka_llm::features
