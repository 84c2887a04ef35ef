/*
 * test_registry_json.c — registry/json_compat: every JSON Schema compatibility rule as a
 * table of (old, new) pairs with the expected answer in both directions (BACKWARD: new
 * reads old; FORWARD: old reads new), the messages (kind and path), hostile inputs (deep
 * nesting, $ref cycles, combinator blowups), and the registry levels on JSON subjects.
 *
 * Schemas in the table are written with ' for " to keep them readable.
 */
#include "unit.h"

#include "registry/json_compat.h"
#include "registry/registry_state.h"

static json_t *load(const char *text)
{
    char buf[4096];
    size_t n = strlen(text);
    assert_true(n < sizeof(buf));
    for (size_t i = 0; i <= n; i++) buf[i] = text[i] == '\'' ? '"' : text[i];
    json_error_t je;
    json_t *j = json_loads(buf, JSON_DECODE_ANY, &je);
    if (!j) fprintf(stderr, "bad test schema %s: %s\n", buf, je.text);
    assert_non_null(j);
    return j;
}

/* 1 when reader reads writer; a failure always says why, success says nothing. */
static int reads_msgs(const char *reader, const char *writer, json_t *msgs)
{
    json_t *r = load(reader), *w = load(writer);
    int ok = kp_json_can_read(r, w, msgs);
    assert_int_equal(ok, json_array_size(msgs) == 0);
    /* the quiet answer is the same */
    assert_int_equal(kp_json_can_read(r, w, NULL), ok);
    json_decref(r);
    json_decref(w);
    return ok;
}

static int reads(const char *reader, const char *writer)
{
    json_t *msgs = json_array();
    int ok = reads_msgs(reader, writer, msgs);
    json_decref(msgs);
    return ok;
}

typedef struct pair {
    const char *old_schema, *new_schema;
    int backward; /* new reads old */
    int forward;  /* old reads new */
} pair_t;

static void run_table(const pair_t *t, size_t n)
{
    int failures = 0;
    for (size_t i = 0; i < n; i++) {
        int b = reads(t[i].new_schema, t[i].old_schema);
        int f = reads(t[i].old_schema, t[i].new_schema);
        if (b != t[i].backward || f != t[i].forward) {
            fprintf(stderr, "row %zu: old %s new %s: backward %d (want %d), forward %d (want %d)\n",
                    i, t[i].old_schema, t[i].new_schema, b, t[i].backward, f, t[i].forward);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

#define TABLE(t) run_table(t, sizeof(t) / sizeof(t[0]))

static void test_booleans_and_types(void **state)
{
    (void)state;
    static const pair_t t[] = {
        {"true", "true", 1, 1},
        {"{}", "true", 1, 1},
        {"false", "{'type':'string'}", 1, 0},
        {"true", "false", 0, 1},
        {"{'type':'string'}", "{'type':'string'}", 1, 1},
        {"{'type':'string'}", "{'type':'integer'}", 0, 0},
        /* integer -> number widens; number -> integer narrows */
        {"{'type':'integer'}", "{'type':'number'}", 1, 0},
        /* type arrays */
        {"{'type':'string'}", "{'type':['string','null']}", 1, 0},
        {"{'type':['string','null']}", "{'type':['null','string']}", 1, 1},
        {"{'type':['string','integer']}", "{'type':['string','number']}", 1, 0},
        /* no type: anything */
        {"{'type':'object'}", "{}", 1, 0},
        /* annotations and unknown keywords change nothing */
        {"{'type':'string','title':'a','description':'x','format':'email','x-own':1}",
         "{'type':'string','default':'q','examples':['z'],'$comment':'c'}", 1, 1},
        /* the writer's values narrow its types */
        {"{'enum':[1,2]}", "{'type':'integer'}", 1, 0},
        {"{'type':'number','enum':[1,2]}", "{'type':'integer'}", 1, 0},
        {"{'type':'number','enum':[1.0,2.5]}", "{'type':'integer'}", 0, 0},
        /* 1.0 is an integer: a string reader cannot read it */
        {"{'type':'integer','enum':[1.0]}", "{'type':'string'}", 0, 0},
        {"{'const':'a'}", "{'type':'string'}", 1, 0},
    };
    TABLE(t);
}

static void test_enum_const(void **state)
{
    (void)state;
    static const pair_t t[] = {
        {"{'enum':['a','b']}", "{'enum':['a','b','c']}", 1, 0},
        {"{'enum':['a','b']}", "{'enum':['b','a']}", 1, 1},
        {"{'enum':['a','b']}", "{'enum':['a','c']}", 0, 0},
        {"{'type':'string'}", "{'type':'string','enum':['a']}", 0, 1},
        {"{'const':'a'}", "{'enum':['a','b']}", 1, 0},
        {"{'const':'a'}", "{'const':'b'}", 0, 0},
        {"{'const':{'x':[1]}}", "{'const':{'x':[1]}}", 1, 1},
        {"{'type':'string'}", "{'type':'string','const':'a'}", 0, 1},
        {"{'enum':[1,null]}", "{'type':['integer','null']}", 1, 0},
    };
    TABLE(t);
}

static void test_strings(void **state)
{
    (void)state;
    static const pair_t t[] = {
        {"{'type':'string'}", "{'type':'string','minLength':1}", 0, 1},
        {"{'type':'string','minLength':2}", "{'type':'string','minLength':1}", 1, 0},
        {"{'type':'string'}", "{'type':'string','maxLength':5}", 0, 1},
        {"{'type':'string','maxLength':5}", "{'type':'string','maxLength':9}", 1, 0},
        {"{'type':'string'}", "{'type':'string','pattern':'^a'}", 0, 1},
        {"{'type':'string','pattern':'^a'}", "{'type':'string','pattern':'^a'}", 1, 1},
        {"{'type':'string','pattern':'^a'}", "{'type':'string','pattern':'^b'}", 0, 0},
        /* string constraints do not matter when the writer writes no strings */
        {"{'type':'integer'}", "{'type':['integer','string'],'minLength':3}", 1, 0},
    };
    TABLE(t);
}

static void test_numbers(void **state)
{
    (void)state;
    static const pair_t t[] = {
        {"{'type':'number'}", "{'type':'number','minimum':0}", 0, 1},
        {"{'type':'number','minimum':1}", "{'type':'number','minimum':0}", 1, 0},
        {"{'type':'number','maximum':10}", "{'type':'number','maximum':20}", 1, 0},
        {"{'type':'number','minimum':0}", "{'type':'number','exclusiveMinimum':0}", 0, 1},
        {"{'type':'number','exclusiveMaximum':5}", "{'type':'number','maximum':5}", 1, 0},
        /* draft 4's boolean form */
        {"{'type':'number','minimum':0,'exclusiveMinimum':true}", "{'type':'number','minimum':0}",
         1, 0},
        {"{'type':'number'}", "{'type':'number','multipleOf':2}", 0, 1},
        {"{'type':'number','multipleOf':4}", "{'type':'number','multipleOf':2}", 1, 0},
        {"{'type':'number','multipleOf':3}", "{'type':'number','multipleOf':2}", 0, 0},
        {"{'type':'number','multipleOf':0.5}", "{'type':'number','multipleOf':0.25}", 1, 0},
        /* integers are multiples of 1 */
        {"{'type':'integer'}", "{'type':'integer','multipleOf':1}", 1, 1},
        {"{'type':'integer'}", "{'type':'number','multipleOf':0.5}", 1, 0},
    };
    TABLE(t);
}

static void test_arrays(void **state)
{
    (void)state;
    static const pair_t t[] = {
        {"{'type':'array','items':{'type':'integer'}}",
         "{'type':'array','items':{'type':'number'}}", 1, 0},
        {"{'type':'array'}", "{'type':'array','items':{'type':'string'}}", 0, 1},
        {"{'type':'array','items':{'type':'string'}}", "{'type':'array','items':{'type':'string'}}",
         1, 1},
        /* tuples: an item added to a closed tuple is free, to an open one is not */
        {"{'type':'array','items':[{'type':'string'}],'additionalItems':false}",
         "{'type':'array','items':[{'type':'string'},{'type':'integer'}],'additionalItems':false}",
         1, 0},
        {"{'type':'array','items':[{'type':'string'}]}",
         "{'type':'array','items':[{'type':'string'},{'type':'integer'}]}", 0, 1},
        {"{'type':'array','items':[{'type':'string'}]}",
         "{'type':'array','items':[{'type':'integer'}]}", 0, 0},
        /* 2020-12 prefixItems */
        {"{'type':'array','prefixItems':[{'type':'string'}],'items':false}",
         "{'type':'array','prefixItems':[{'type':'string'},{'type':'null'}],'items':false}", 1, 0},
        {"{'type':'array','items':{'type':'string'}}",
         "{'type':'array','prefixItems':[{'type':'string'}],'items':{'type':'string'}}", 1, 1},
        {"{'type':'array'}", "{'type':'array','minItems':1}", 0, 1},
        {"{'type':'array','minItems':2}", "{'type':'array','minItems':1}", 1, 0},
        {"{'type':'array','maxItems':3}", "{'type':'array','maxItems':4}", 1, 0},
        {"{'type':'array'}", "{'type':'array','uniqueItems':true}", 0, 1},
        {"{'type':'array','uniqueItems':false}", "{'type':'array'}", 1, 1},
    };
    TABLE(t);
}

static void test_object_content_models(void **state)
{
    (void)state;
    static const pair_t t[] = {
        /* open model: adding a property is refused (old documents may hold it with any
         * value), removing one is fine */
        {"{'type':'object','properties':{'a':{'type':'string'}}}",
         "{'type':'object','properties':{'a':{'type':'string'},'b':{'type':'string'}}}", 0, 1},
        /* ... unless the added property accepts anything */
        {"{'type':'object','properties':{'a':{'type':'string'}}}",
         "{'type':'object','properties':{'a':{'type':'string'},'b':{'description':'any'}}}", 1, 1},
        /* closed model: adding an optional property is fine, removing one is refused */
        {"{'type':'object','properties':{'a':{'type':'string'}},'additionalProperties':false}",
         "{'type':'object','properties':{'a':{'type':'string'},'b':{'type':'string'}},"
         "'additionalProperties':false}",
         1, 0},
        /* partially open: covered by additionalProperties */
        {"{'type':'object','properties':{'a':{'type':'string'}},"
         "'additionalProperties':{'type':'string'}}",
         "{'type':'object','properties':{'a':{'type':'string'},'b':{'type':'string'}},"
         "'additionalProperties':{'type':'string'}}",
         1, 1},
        {"{'type':'object','properties':{'a':{'type':'string'}},"
         "'additionalProperties':{'type':'string'}}",
         "{'type':'object','properties':{'a':{'type':'string'},'b':{'type':'integer'}},"
         "'additionalProperties':{'type':'string'}}",
         0, 0},
        /* a changed property type */
        {"{'type':'object','properties':{'a':{'type':'string'}}}",
         "{'type':'object','properties':{'a':{'type':'integer'}}}", 0, 0},
        /* closing the model */
        {"{'type':'object'}", "{'type':'object','additionalProperties':false}", 0, 1},
        {"{'type':'object','additionalProperties':{'type':'integer'}}",
         "{'type':'object','additionalProperties':{'type':'number'}}", 1, 0},
        /* patternProperties: the same patterns compare their schemas */
        {"{'type':'object','patternProperties':{'^x':{'type':'integer'}}}",
         "{'type':'object','patternProperties':{'^x':{'type':'number'}}}", 1, 0},
        {"{'type':'object','patternProperties':{'^x':{'type':'integer'}}}",
         "{'type':'object','patternProperties':{'^y':{'type':'integer'}}}", 0, 0},
        {"{'type':'object','properties':{'a':{}}}",
         "{'type':'object','properties':{'a':{}},'patternProperties':{'^x':{}}}", 1, 1},
        /* property names are matched against the patterns: 'a' is not under '^x' */
        {"{'type':'object','properties':{'a':{'type':'string'}},"
         "'patternProperties':{'^x':{'type':'string'}}}",
         "{'type':'object','patternProperties':{'^x':{'type':'string'}}}", 1, 0},
        /* a property added to a closed model under a writer pattern must read it (the other
         * way, the pattern still holds for I_1 next to its own schema) */
        {"{'properties':{'f':{}},'additionalProperties':false,"
         "'patternProperties':{'^S_':{'type':'string'},'^I_':{'type':'integer'}}}",
         "{'properties':{'f':{},'I_1':{'type':'number'}},'additionalProperties':false,"
         "'patternProperties':{'^S_':{'type':'string'},'^I_':{'type':'integer'}}}",
         1, 1},
        {"{'properties':{'f':{}},'additionalProperties':false,"
         "'patternProperties':{'^I_':{'type':'integer'}}}",
         "{'properties':{'f':{},'I_1':{'type':'string'}},'additionalProperties':false,"
         "'patternProperties':{'^I_':{'type':'integer'}}}",
         0, 1},
        /* a removed property now under a reader pattern; the patterns read the writer's */
        {"{'properties':{'f':{},'I_1':{'type':'integer'}},'additionalProperties':false}",
         "{'properties':{'f':{}},'additionalProperties':false,"
         "'patternProperties':{'^S_':{'type':'string'},'^I_':{'type':'number'}}}",
         1, 0},
        {"{'properties':{'f':{},'I_1':{'type':'string'}},'additionalProperties':false}",
         "{'properties':{'f':{}},'additionalProperties':false,"
         "'patternProperties':{'^I_':{'type':'number'}}}",
         0, 0},
        /* a new reader pattern over an open writer: its documents may hold anything there */
        {"{'type':'object'}", "{'type':'object','patternProperties':{'^x':{'type':'string'}}}", 0,
         1},
        /* disjoint literal prefixes do not meet; patterns we cannot read are not matched */
        {"{'additionalProperties':false,'patternProperties':{'^a_':{'type':'string'}}}",
         "{'additionalProperties':false,'patternProperties':{'^a_':{'type':'string'},"
         "'^b_':{'type':'integer'}}}",
         1, 0},
        {"{'properties':{'n1':{'type':'string'}},'additionalProperties':false}",
         "{'additionalProperties':false,'patternProperties':{'^n\\\\d$':{'type':'string'}}}", 0, 0},
        /* property names */
        {"{'type':'object'}", "{'type':'object','propertyNames':{'maxLength':3}}", 0, 1},
        {"{'type':'object','propertyNames':{'maxLength':3}}",
         "{'type':'object','propertyNames':{'maxLength':5}}", 1, 0},
    };
    TABLE(t);
}

static void test_required_and_counts(void **state)
{
    (void)state;
    static const pair_t t[] = {
        {"{'type':'object','properties':{'a':{'type':'string'}}}",
         "{'type':'object','properties':{'a':{'type':'string'}},'required':['a']}", 0, 1},
        /* a required property with a default: Confluent accepts it */
        {"{'type':'object','properties':{'a':{'type':'string'}}}",
         "{'type':'object','properties':{'a':{'type':'string','default':'x'}},'required':['a']}", 1,
         1},
        /* required added to a closed model */
        {"{'type':'object','properties':{'a':{}},'additionalProperties':false}",
         "{'type':'object','properties':{'a':{},'b':{}},'required':['b'],"
         "'additionalProperties':false}",
         0, 0},
        {"{'type':'object','required':['a','b']}", "{'type':'object','required':['b']}", 1, 0},
        {"{'type':'object'}", "{'type':'object','minProperties':1}", 0, 1},
        {"{'type':'object','maxProperties':2}", "{'type':'object','maxProperties':3}", 1, 0},
    };
    TABLE(t);
}

static void test_dependencies(void **state)
{
    (void)state;
    static const pair_t t[] = {
        {"{'type':'object'}", "{'type':'object','dependentRequired':{'a':['b']}}", 0, 1},
        {"{'type':'object','dependentRequired':{'a':['b','c']}}",
         "{'type':'object','dependentRequired':{'a':['b']}}", 1, 0},
        /* the draft-7 spelling, and a writer requiring the name anyway */
        {"{'type':'object','dependencies':{'a':['b']}}",
         "{'type':'object','dependentRequired':{'a':['b']}}", 1, 1},
        {"{'type':'object','required':['b']}", "{'type':'object','dependencies':{'a':['b']}}", 1,
         0},
        /* dependency schemas */
        {"{'type':'object'}", "{'type':'object','dependentSchemas':{'a':{'required':['b']}}}", 0,
         1},
        {"{'type':'object','dependencies':{'a':{'properties':{'b':{'type':'integer'}}}}}",
         "{'type':'object','dependencies':{'a':{'properties':{'b':{'type':'number'}}}}}", 1, 0},
    };
    TABLE(t);
}

static void test_combinators(void **state)
{
    (void)state;
    static const pair_t t[] = {
        /* sum types: extending is backward compatible, narrowing is not */
        {"{'oneOf':[{'type':'string'},{'type':'integer'}]}",
         "{'oneOf':[{'type':'string'},{'type':'integer'},{'type':'null'}]}", 1, 0},
        {"{'anyOf':[{'type':'string'},{'type':'integer'}]}",
         "{'anyOf':[{'type':'integer'},{'type':'string'}]}", 1, 1},
        /* a schema becoming one branch of a combination */
        {"{'type':'string'}", "{'anyOf':[{'type':'string'},{'type':'null'}]}", 1, 0},
        {"{'type':'string'}", "{'oneOf':[{'type':'integer'},{'type':'null'}]}", 0, 0},
        /* branches compared one by one, including nested changes */
        {"{'anyOf':[{'type':'object','properties':{'a':{'type':'integer'}}},{'type':'null'}]}",
         "{'anyOf':[{'type':'object','properties':{'a':{'type':'number'}}},{'type':'null'}]}", 1,
         0},
        /* the writer's siblings of anyOf can be enough */
        {"{'type':'string','anyOf':[{'minLength':1},{'maxLength':0}]}", "{'type':'string'}", 1, 0},
        /* product types: more branches narrow */
        {"{'allOf':[{'type':'object'},{'required':['a']}]}", "{'allOf':[{'type':'object'}]}", 1, 0},
        {"{'allOf':[{'type':'integer'},{'minimum':0}]}",
         "{'allOf':[{'type':'number'},{'minimum':0}]}", 1, 0},
        {"{'type':'integer','allOf':[{'minimum':0}]}", "{'type':'integer','minimum':0}", 1, 1},
        /* not: the reader's not must cover no more than the writer's */
        {"{'not':{'type':'string'}}", "{'not':{'type':['string','null']}}", 0, 1},
        {"{'type':'integer'}", "{'type':'integer','not':{'const':0}}", 0, 1},
        {"{'not':{'type':'null'}}", "{'not':{'type':'null'}}", 1, 1},
    };
    TABLE(t);
}

static void test_refs(void **state)
{
    (void)state;
    static const pair_t t[] = {
        {"{'definitions':{'a':{'type':'integer'}},'properties':{'x':{'$ref':'#/definitions/a'}}}",
         "{'$defs':{'a':{'type':'number'}},'properties':{'x':{'$ref':'#/$defs/a'}}}", 1, 0},
        {"{'properties':{'x':{'type':'integer'}}}",
         "{'$defs':{'a':{'type':'integer'}},'properties':{'x':{'$ref':'#/$defs/a'}}}", 1, 1},
        /* recursive schemas (a linked list) terminate, and changes inside are found */
        {"{'$ref':'#/definitions/n','definitions':{'n':{'type':'object','properties':{"
         "'v':{'type':'integer'},'next':{'$ref':'#/definitions/n'}}}}}",
         "{'$ref':'#/definitions/n','definitions':{'n':{'type':'object','properties':{"
         "'v':{'type':'number'},'next':{'$ref':'#/definitions/n'}}}}}",
         1, 0},
        {"{'type':'object','properties':{'v':{'type':'integer'},'c':{'$ref':'#'}}}",
         "{'type':'object','properties':{'v':{'type':'integer'},'c':{'$ref':'#'}}}", 1, 1},
        /* the reader's $ref siblings count too */
        {"{'$defs':{'s':{'type':'string'}},'$ref':'#/$defs/s'}",
         "{'$defs':{'s':{'type':'string'}},'$ref':'#/$defs/s','maxLength':3}", 0, 1},
        /* references that do not resolve, or are not local: refused, even when the same */
        {"{'$ref':'#/definitions/missing'}", "{'$ref':'#/definitions/missing'}", 0, 0},
        {"{'$ref':'other.json'}", "{'$ref':'other.json'}", 0, 0},
        {"{'type':'object'}", "{'$ref':'#anchor'}", 0, 0},
    };
    TABLE(t);
}

static void test_unanalysed_keywords(void **state)
{
    (void)state;
    static const pair_t t[] = {
        /* the same value: fine; a different or new one: refused */
        {"{'type':'array','contains':{'type':'string'}}",
         "{'type':'array','contains':{'type':'string'}}", 1, 1},
        {"{'type':'array'}", "{'type':'array','contains':{'type':'string'}}", 0, 1},
        {"{'if':{'required':['a']},'then':{'required':['b']}}",
         "{'if':{'required':['a']},'then':{'required':['c']}}", 0, 0},
        {"{'type':'object'}", "{'type':'object','unevaluatedProperties':false}", 0, 1},
        {"{'type':'object','unevaluatedProperties':false}",
         "{'type':'object','properties':{'a':{}},'unevaluatedProperties':false}", 0, 0},
        /* ... but the very same document reads itself */
        {"{'type':'object','unevaluatedProperties':false}",
         "{'type':'object','unevaluatedProperties':false}", 1, 1},
        /* a keyword of the wrong JSON type is not skipped, on either side */
        {"{'type':'object'}", "{'type':'object','required':'a'}", 0, 0},
        {"{'type':'string'}", "{'type':'string','maxLength':'3'}", 0, 0},
        {"{'type':'object'}", "{'type':'object','properties':{'a':3}}", 0, 1},
    };
    TABLE(t);
}

/* The message names the kind and the place. */
static void expect_message(const char *reader, const char *writer, const char *kind,
                           const char *path)
{
    json_t *msgs = json_array();
    assert_int_equal(reads_msgs(reader, writer, msgs), 0);
    char *all = json_dumps(msgs, JSON_COMPACT);
    if (!strstr(all, kind) || !strstr(all, path))
        fprintf(stderr, "messages %s\n  want %s at %s\n", all, kind, path);
    assert_non_null(strstr(all, kind));
    assert_non_null(strstr(all, path));
    free(all);
    json_decref(msgs);
}

static void test_messages(void **state)
{
    (void)state;
    expect_message("{'properties':{'a':{'type':'string'},'b':{'type':'string'}}}",
                   "{'properties':{'a':{'type':'string'}}}", "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL",
                   "path:'#/properties/b'");
    expect_message("{'properties':{},'additionalProperties':false}",
                   "{'properties':{'a':{'type':'string'}}}",
                   "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL", "path:'#/properties/a'");
    expect_message("{'properties':{'a':{}},'required':['a']}", "{'properties':{'a':{}}}",
                   "REQUIRED_PROPERTY_ADDED", "path:'#/required/0'");
    expect_message("{'properties':{'a':{},'b':{}},'required':['b'],'additionalProperties':false}",
                   "{'properties':{'a':{}},'additionalProperties':false}",
                   "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL", "path:'#/required/0'");
    expect_message("{'properties':{'a':{'items':{'type':'integer'}}}}",
                   "{'properties':{'a':{'items':{'type':'number'}}}}", "TYPE_NARROWED",
                   "path:'#/properties/a/items'");
    expect_message("{'type':'string'}", "{'type':'integer'}", "TYPE_CHANGED", "path:'#'");
    expect_message("{'enum':['a']}", "{'enum':['a','b']}", "ENUM_NARROWED", "\\\"b\\\"");
    expect_message("{'oneOf':[{'type':'string'}]}", "{'oneOf':[{'type':'string'},{'type':'null'}]}",
                   "SUM_TYPE_NARROWED", "path:'#/oneOf/1/oneOf'");
    expect_message("{'type':'string','maxLength':3}", "{'type':'string'}", "MAX_LENGTH_DECREASED",
                   "path:'#'");
    expect_message("{'type':'number','minimum':1}", "{'type':'number','minimum':0}",
                   "MINIMUM_INCREASED", "#");
    expect_message("{'type':'array','contains':{}}", "{'type':'array'}", "UNSUPPORTED_KEYWORD",
                   "path:'#/contains'");
    expect_message("{'$ref':'http://x/y.json'}", "{}", "UNSUPPORTED_REFERENCE", "http://x/y.json");
    expect_message("{'not':{}}", "{}", "NOT_TYPE_ADDED", "path:'#/not'");
    expect_message("{'dependentRequired':{'a':['b']}}", "{}", "DEPENDENCY_ARRAY_ADDED",
                   "path:'#/dependentRequired/a'");
    /* several problems are all listed */
    json_t *msgs = json_array();
    assert_int_equal(reads_msgs("{'properties':{'a':{'type':'string'},'b':{'type':'integer'}}}",
                                "{'properties':{'a':{'type':'integer'},'b':{'type':'string'}}}",
                                msgs),
                     0);
    assert_int_equal(json_array_size(msgs), 2);
    json_decref(msgs);
}

/* levels of anyOf, each with three branches, the innermost being of type inner */
static void nested_any_of(char *out, int levels, const char *inner)
{
    char *p = out;
    for (int i = 0; i < levels; i++)
        p += sprintf(p, "{'anyOf':[{'type':'null'},{'type':'integer'},");
    p += sprintf(p, "{'type':'%s'}", inner);
    for (int i = 0; i < levels; i++) p += sprintf(p, "]}");
}

/* A chain of definitions, each an anyOf of three objects whose property refers to the next:
 * linear in size, exponential to compare; the innermost is of type inner. */
static void any_of_chain(char *out, int levels, const char *inner)
{
    char *p = out + sprintf(out, "{'$ref':'#/$defs/d0','$defs':{");
    for (int i = 0; i < levels; i++)
        p += sprintf(p,
                     "'d%d':{'anyOf':[{'properties':{'x':{'$ref':'#/$defs/d%d'}}},"
                     "{'properties':{'y':{'$ref':'#/$defs/d%d'}}},"
                     "{'properties':{'x':{'$ref':'#/$defs/d%d'}}}]},",
                     i, i + 1, i + 1, i + 1);
    sprintf(p, "'d%d':{'type':'%s'}}}", levels, inner);
}

/* Hostile inputs: deep nesting, reference cycles, combinator blowups. */
static void test_hostile(void **state)
{
    (void)state;
    /* 10,000 levels of items: refused as too deep, no stack overflow */
    size_t n = 10000;
    char *deep = malloc(n * 12 + 16);
    char *p = deep;
    for (size_t i = 0; i < n; i++) p += sprintf(p, "{\"items\":");
    p += sprintf(p, "{}");
    for (size_t i = 0; i < n; i++) *p++ = '}';
    *p = 0;
    json_error_t je;
    json_t *d = json_loads(deep, 0, &je);
    if (d) { /* jansson may refuse this depth itself; then there is nothing to check */
        /* even against itself: past the depth limit nothing is shown compatible */
        json_t *msgs = json_array();
        assert_int_equal(kp_json_can_read(d, d, msgs), 0);
        assert_non_null(strstr(json_string_value(json_array_get(msgs, 0)), "TOO_DEEP"));
        json_decref(msgs);
        json_decref(d);
    }
    free(deep);
    /* a nest of 200 levels that is not trivial: refused as too deep with its message */
    char buf[8192];
    p = buf;
    for (int i = 0; i < 200; i++) p += sprintf(p, "{'items':");
    p += sprintf(p, "{'type':'string'}");
    for (int i = 0; i < 200; i++) *p++ = '}';
    *p = 0;
    expect_message(buf, buf, "TOO_DEEP", "items/items");
    /* $ref cycles: a reference to itself, and two references to each other */
    /* (a cycle of bare references means nothing: refused, on either side) */
    expect_message("{'$ref':'#'}", "{'type':'string'}", "REFERENCE_CYCLE", "path:'#'");
    const char *cycle = "{'$ref':'#/$defs/a','$defs':{'a':{'$ref':'#/$defs/b'},"
                        "'b':{'$ref':'#/$defs/a'}}}";
    assert_int_equal(reads(cycle, "{'type':'string'}"), 0);
    assert_int_equal(reads("{'type':'string'}", cycle), 0);
    /* a recursive schema that does say something is fine against itself */
    const char *tree = "{'$ref':'#/$defs/t','$defs':{'t':{'type':'object','properties':{"
                       "'kids':{'type':'array','items':{'$ref':'#/$defs/t'}},"
                       "'alt':{'anyOf':[{'$ref':'#'},{'type':'null'}]}}}}}";
    assert_int_equal(reads(tree, tree), 1);
    /* nested anyOf against nested anyOf: exponential trials stop at the budget */
    char other[8192];
    nested_any_of(buf, 30, "string");
    nested_any_of(other, 30, "boolean");
    json_t *msgs = json_array();
    assert_int_equal(reads_msgs(buf, other, msgs), 0);
    json_decref(msgs);
    /* exponential work stops at the budget, with its message */
    any_of_chain(buf, 20, "string");
    any_of_chain(other, 20, "boolean");
    expect_message(buf, other, "TOO_COMPLEX", "comparisons");
    /* identical documents need no work at all */
    assert_int_equal(reads(buf, buf), 1);
    /* a pattern whose compilation could explode (stacked quantifiers) is not compiled: the
     * removed property cannot be placed under it, which is refused, not guessed */
    expect_message(
        "{'additionalProperties':false,'patternProperties':{'0++++++++++x.*y':{'type':'string'}}}",
        "{'properties':{'000x':{'type':'string'}},'additionalProperties':false}",
        "UNSUPPORTED_KEYWORD", "properties/000x");
    /* a cycle through allOf never reaches a value */
    expect_message("{'allOf':[{'$ref':'#'}],'type':'string'}",
                   "{'allOf':[{'$ref':'#'}],'type':'string','maxLength':1}", "REFERENCE_CYCLE",
                   "allOf/0");
}

/* Registry levels on a JSON subject: BACKWARD, FORWARD, FULL_TRANSITIVE, PROTOBUF. */
static int add(kp_reg_state_t *st, const char *subject, const char *type, const char *text,
               kp_reg_error_t *e)
{
    char buf[1024];
    size_t n = strlen(text);
    for (size_t i = 0; i <= n; i++) buf[i] = text[i] == '\'' ? '"' : text[i];
    kp_reg_candidate_t c;
    if (kp_reg_candidate_parse(st, type, buf, n, NULL, &c, e) < 0) return -1;
    kp_reg_batch_t b = {0};
    int id, version;
    int rc = kp_reg_plan_register(st, subject, &c, &b, &id, &version, e);
    char err[200];
    for (int i = 0; i < b.n; i++)
        kp_reg_apply(st, b.records[i].key, strlen(b.records[i].key), b.records[i].value,
                     strlen(b.records[i].value), err, sizeof(err));
    kp_reg_batch_free(&b);
    kp_reg_candidate_free(&c);
    return rc < 0 ? -1 : version;
}

static void level(kp_reg_state_t *st, const char *subject, kp_compat_t l)
{
    kp_reg_batch_t b = {0};
    kp_reg_plan_config(subject, l, &b);
    char err[200];
    kp_reg_apply(st, b.records[0].key, strlen(b.records[0].key), b.records[0].value,
                 strlen(b.records[0].value), err, sizeof(err));
    kp_reg_batch_free(&b);
}

static void test_registry_levels(void **state)
{
    (void)state;
    kp_reg_state_t st;
    kp_reg_state_init(&st);
    kp_reg_error_t e;
    const char *v1 = "{'type':'object','properties':{'a':{'type':'string'}},"
                     "'additionalProperties':false}";
    const char *v2 = "{'type':'object','properties':{'a':{'type':'string'},'b':{'type':'integer'}},"
                     "'additionalProperties':false}";
    const char *v3 = "{'type':'object','properties':{'b':{'type':'integer'}},"
                     "'additionalProperties':false}";
    assert_int_equal(add(&st, "j", "JSON", v1, &e), 1);
    assert_int_equal(add(&st, "j", "JSON", v2, &e), 2);  /* BACKWARD: optional added, closed */
    assert_int_equal(add(&st, "j", "JSON", v3, &e), -1); /* a removed property */
    assert_int_equal(e.code, 409);
    assert_non_null(strstr(e.message, "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL"));
    assert_non_null(strstr(e.message, "#/properties/a"));
    assert_non_null(strstr(e.message, "oldSchemaVersion: 2"));
    /* FORWARD: the old reads the new, so removing is fine and adding is not */
    level(&st, "j", KP_COMPAT_FORWARD);
    assert_int_equal(add(&st, "j", "JSON", v3, &e), 3);
    /* FULL_TRANSITIVE: against every version */
    level(&st, "j", KP_COMPAT_FULL_TRANSITIVE);
    assert_int_equal(add(&st, "j", "JSON", v2, &e), 0); /* already there: nothing written */
    const char *v4 = "{'type':'object','properties':{'a':{'type':'string'},'b':{'type':'integer'}"
                     ",'c':{}},'additionalProperties':false}";
    assert_int_equal(add(&st, "j", "JSON", v4, &e), -1);
    assert_non_null(strstr(e.message, "oldSchemaVersion: "));
    /* the compatibility endpoint's check against one version, with messages: v3 reads
     * itself (version 3), not version 1 (its closed model lacks a) */
    kp_reg_candidate_t c;
    char buf[512];
    size_t n = strlen(v3);
    for (size_t i = 0; i <= n; i++) buf[i] = v3[i] == '\'' ? '"' : v3[i];
    assert_int_equal(kp_reg_candidate_parse(&st, "JSON", buf, n, NULL, &c, &e), 0);
    json_t *msgs = json_array();
    assert_int_equal(
        kp_reg_compatible(&st, kp_reg_subject(&st, "j"), KP_COMPAT_BACKWARD, &c, 3, msgs), 1);
    assert_int_equal(
        kp_reg_compatible(&st, kp_reg_subject(&st, "j"), KP_COMPAT_BACKWARD, &c, 1, msgs), 0);
    assert_true(json_array_size(msgs) > 0);
    json_decref(msgs);
    kp_reg_candidate_free(&c);
    /* PROTOBUF: still only NONE or identical */
    assert_int_equal(add(&st, "p", "PROTOBUF", "syntax = 'proto3';", &e), 1);
    assert_int_equal(add(&st, "p", "PROTOBUF", "syntax = 'proto3'; message M {}", &e), -1);
    assert_non_null(strstr(e.message, "PROTOBUF schemas is not checked"));
    kp_reg_state_free(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_booleans_and_types),
        cmocka_unit_test(test_enum_const),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_arrays),
        cmocka_unit_test(test_object_content_models),
        cmocka_unit_test(test_required_and_counts),
        cmocka_unit_test(test_dependencies),
        cmocka_unit_test(test_combinators),
        cmocka_unit_test(test_refs),
        cmocka_unit_test(test_unanalysed_keywords),
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_registry_levels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
