/* Every BTF kind clang emits, for tests/offline/test_btf*.py (compiled there
 * with clang -O2 -g -target bpf / bpfeb into a temp dir). */
typedef unsigned long long u64;
typedef u64 u64_alias;
enum e64 { BIG = 0xffffffffffULL, SMALL = 1 };
enum sgn { NEG = -1, POS = 1 };
enum __attribute__((packed)) small_enum { S_A = 1, S_B = 200 };
struct fwd_only;
union fwd_union;
struct __attribute__((packed)) packed_s { char a; int b; short c; };
struct bits { unsigned int a:3, b:5; int c:7; unsigned long long d:40; char e; };
union u { int i; float f; double d; };
struct with_anon { int x; struct { short y; short z; }; union { int p; char q[4]; }; };
#define __tag(x) __attribute__((btf_decl_tag(x)))
#define __ttag(x) __attribute__((btf_type_tag(x)))
struct tagged { int a __tag("member_tag"); int __ttag("user") *p; } __tag("struct_tag");
struct holder {
	struct fwd_only *f;
	union fwd_union *fu;
	enum e64 big;
	enum sgn s;
	enum small_enum se;
	struct packed_s ps;
	struct bits b;
	union u un;
	struct with_anon wa;
	struct tagged t;
	float fl;
	double db;
	_Bool flag;
	char name[8];
	int arr[2][3];
	int (*fp)(int, char);
	const volatile u64_alias cv;
	int * restrict rp;
	__int128 big128;
	char flex[];
};
struct holder h_global;
const volatile int ro_value = 7;
static int static_counter;

int __tag("func_tag") use_holder(struct holder *h __tag("param_tag"), int n)
{
	static_counter += n;
	return h->b.a + h->arr[1][2] + static_counter + ro_value;
}
