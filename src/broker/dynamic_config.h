/*
 * dynamic_config.h — dynamic broker configs: the broker properties that AlterConfigs /
 * IncrementalAlterConfigs on a BROKER resource change while the broker runs, as Kafka's
 * DynamicBrokerConfig does.
 *
 * Layers, highest precedence first (Kafka's ConfigSource):
 *   DYNAMIC_BROKER_CONFIG          resource name = this broker's id
 *   DYNAMIC_DEFAULT_BROKER_CONFIG  resource name "" (the cluster-wide default)
 *   STATIC_BROKER_CONFIG           the properties file and --set (never changes after start)
 *   DEFAULT_CONFIG                 the built-in default
 * The two dynamic layers live in <log.dir>/meta/broker-configs.json (atomic write, 0600: it
 * may hold ssl.key.password) and are applied again on start, before topics open.
 *
 * What can change is one table (dynamic_config.c): each property names its validation and
 * an apply hook that pushes the new effective value into the module that uses it (topic
 * defaults into every topic, log.cleaner.* into the log manager, max.connections into the
 * listeners, ssl.* into a new TLS context for new connections). A property another module
 * adds later is one table row plus, if needed, a hook. Every broker-level default of a topic
 * config (log.retention.ms, log.segment.bytes, message.max.bytes, ...) is dynamic without a
 * row of its own: topics that inherit it see the new value at once.
 *
 * Threading: alterations are serialized by the module's mutex and run on the calling network
 * thread (they write one small file; hooks do in-memory work, except the TLS context build,
 * which reads the key files). Readers take copies of the layers.
 */
#ifndef KP_DYNAMIC_CONFIG_H
#define KP_DYNAMIC_CONFIG_H

#include "core/props.h"

#include <stddef.h>
#include <stdint.h>

typedef struct kp_broker kp_broker_t;
typedef struct kp_dynconf kp_dynconf_t;

/* The layers of broker properties, copied for one reader (kp_dynconf_layers). */
typedef struct kp_broker_layers {
    kp_props_t *dyn_broker;
    kp_props_t *dyn_default;
    const kp_props_t *statics; /* the broker's static props: immutable after start */
} kp_broker_layers_t;

/* Loads the persisted dynamic configs for the broker whose static props are given; entries
 * that are no longer valid are logged and skipped. NULL with err on an unreadable file. */
kp_dynconf_t *kp_dynconf_open(const char *meta_dir, const kp_props_t *statics, char *err,
                              size_t errlen);
void kp_dynconf_free(kp_dynconf_t *d);

/* A new props object holding the effective broker properties (static overlaid by the
 * dynamic default, then by the per-broker layer). The caller frees it. */
kp_props_t *kp_dynconf_effective(kp_dynconf_t *d);
void kp_dynconf_layers(kp_dynconf_t *d, kp_broker_layers_t *out);
void kp_broker_layers_free(kp_broker_layers_t *l);
/* A broker property's value and its source (KP_CONFIG_SOURCE_*), or NULL when no layer sets
 * it (the caller then reports the built-in default). */
const char *kp_broker_layers_get(const kp_broker_layers_t *l, const char *key, int *source);

/* The broker properties DescribeConfigs reports besides the topic-config defaults, and
 * which of them can change at run time. */
#define KP_BPROP_DYNAMIC    1 /* AlterConfigs may change it */
#define KP_BPROP_PER_BROKER 2 /* only per broker, never as a cluster-wide default (as Kafka) */
#define KP_BPROP_SENSITIVE  4 /* never shown (DescribeConfigs value null) */

typedef enum {
    KP_BPROP_LONG,     /* decimal in [min, max] */
    KP_BPROP_BOOL,     /* true | false */
    KP_BPROP_STRING,   /* any */
    KP_BPROP_FILE,     /* a readable file */
    KP_BPROP_PASSWORD, /* any, sensitive */
    KP_BPROP_PEM,      /* a store type: PEM is the only one the TLS listener reads */
} kp_bprop_type_t;

typedef struct kp_broker_prop_def {
    const char *name;
    const char *default_value; /* NULL: none */
    int flags;
    kp_bprop_type_t type;
    int64_t min, max;
    int hook; /* which module a change is pushed to (dynamic_config.c) */
    /* dynamic: appended to a range error ("this broker runs one cleaner thread");
     * static: why it cannot change at run time; NULL: the generic message */
    const char *why;
} kp_broker_prop_def_t;

extern const kp_broker_prop_def_t kp_broker_prop_defs[];
extern const size_t kp_broker_prop_defs_count;
const kp_broker_prop_def_t *kp_broker_prop_find(const char *name);
/* Whether a broker property can change at run time (DescribeConfigs' ReadOnly = !this):
 * the table's dynamic rows and every broker-level default of a topic config. */
int kp_dynconf_is_dynamic(const char *name);

/* 0 when broker property `name` may be set to `value` (per broker, or as the cluster-wide
 * default); else -1 with a message naming the property, the rule and the value. Never
 * changes anything. */
int kp_dynconf_validate(const char *name, const char *value, int per_broker, char *err, size_t n);

/* AlterConfigs (ops NULL: the given set replaces the layer) or IncrementalAlterConfigs
 * (ops: 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT) on the per-broker layer (per_broker) or the
 * cluster-wide default. All keys are validated first; nothing changes on an error. Then the
 * layer is persisted and the apply hooks run. Returns a Kafka error code, err filled. */
int16_t kp_dynconf_alter(kp_broker_t *b, int per_broker, const char **keys, const char **values,
                         const int8_t *ops, int n, int validate_only, char *err, size_t errlen);

/* Runs every apply hook once with the current layers (broker start, after the modules the
 * hooks reach exist). */
void kp_dynconf_apply_all(kp_broker_t *b);

#endif
