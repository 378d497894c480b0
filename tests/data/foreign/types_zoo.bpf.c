// SPDX-License-Identifier: GPL-2.0
/* Awkward C types in map values and globals: C and Python keywords as field
 * names, enums with negative and 64-bit values, packed and over-aligned
 * structs, zero-length arrays, nested anonymous unions, long identifiers. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum signed_enum { NEG_BIG = -2147483647 - 1, NEG_ONE = -1, ZERO = 0, POS = 5 };
enum wide_enum { WIDE_SMALL = 1, WIDE_BIG = 0xfffffffff0000000ULL };
enum neg64_enum { N64_MIN = -9223372036854775807LL - 1, N64_POS = 0x100000000LL };

struct keywords {
	int class;
	int def;
	int lambda;
	int None;
	int True;
	int import;
	int from;
	int yield;
	int await;
	int async;
	unsigned char _pack_;
	unsigned char _fields_;
	unsigned short self;
	long long int_;
	int print;
	int type;
	int int_t;
};

struct __attribute__((packed)) packed_s {
	char c;
	unsigned long long q;
	unsigned short h;
	unsigned int bits:3, more:13;
};

struct over_aligned {
	char c;
	int x __attribute__((aligned(16)));
	char tail;
} __attribute__((aligned(16)));

struct with_zla {
	unsigned int len;
	unsigned char data[0];
};

struct nested_anon {
	int kind;
	union {
		struct {
			unsigned short a;
			unsigned short b;
		};
		struct {
			unsigned int ab;
		} named;
		union {
			unsigned char raw[4];
			signed char sraw[4];
		};
	};
	struct {
		int inner_x;
		union {
			long long l;
			double d;
		};
	};
};

struct a_structure_with_a_really_really_long_name_that_goes_on_and_on_for_quite_some_time_indeed_yes {
	int a_member_with_a_really_really_long_name_that_goes_on_and_on_for_quite_some_time_indeed;
	enum signed_enum se;
	enum wide_enum we;
	enum neg64_enum ne;
};

struct zoo_value {
	struct keywords kw;
	struct packed_s packed;
	struct over_aligned al;
	struct nested_anon na;
	struct with_zla zla;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, struct keywords);
	__type(value, struct zoo_value);
} zoo SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct a_structure_with_a_really_really_long_name_that_goes_on_and_on_for_quite_some_time_indeed_yes);
} a_map_with_a_really_really_long_name_that_goes_on_and_on_for_quite_some_time SEC(".maps");

volatile const enum signed_enum cfg_signed = NEG_ONE;
volatile const enum wide_enum cfg_wide = WIDE_BIG;
volatile const enum neg64_enum cfg_neg64 = N64_MIN;
volatile struct packed_s g_packed = { .c = 1, .q = 2, .h = 3, .bits = 5, .more = 77 };
volatile struct over_aligned g_aligned;
volatile struct nested_anon g_anon = { .kind = 3, .a = 1, .b = 2 };
volatile struct keywords g_keywords = { .class = 1, .def = 2, .None = 3 };
volatile int a_global_variable_with_a_really_really_long_name_that_goes_on_and_on_for_a_while = 7;

SEC("xdp")
int zoo_prog(struct xdp_md *ctx)
{
	struct keywords k = {};
	struct zoo_value *v;
	__u32 i = 0;

	k.class = cfg_signed + cfg_wide + cfg_neg64;
	v = bpf_map_lookup_elem(&zoo, &k);
	if (v)
		return v->na.kind + g_packed.q + g_anon.l + g_aligned.x + g_keywords.def;
	if (bpf_map_lookup_elem(&a_map_with_a_really_really_long_name_that_goes_on_and_on_for_quite_some_time, &i))
		return a_global_variable_with_a_really_really_long_name_that_goes_on_and_on_for_a_while;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
