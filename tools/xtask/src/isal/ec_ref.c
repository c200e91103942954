/* Reference parity from Intel ISA-L for the erasure-coding engine test.
 *
 *   ec_ref K M LEN SEED        data from xorshift64(SEED); prints, per
 *                              parity fragment, "parity I fnv1a64 HEX"
 *   ec_ref --pattern K M LEN   data[j][b] = (j*LEN + b) * 7 + 3 (mod 256);
 *                              prints each parity fragment in hex
 *
 * The data generator is the one firmware/tests/src/bin/accel.rs uses:
 * x ^= x << 13; x ^= x >> 7; x ^= x << 17; byte = low 8 bits of x, one
 * step per byte, fragment 0 first. Parity is ISA-L's: gf_gen_cauchy1_matrix,
 * ec_init_tables, ec_encode_data (isa-l/erasure_code.h).
 */
#include <isa-l/erasure_code.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	int pattern = argc > 1 && strcmp(argv[1], "--pattern") == 0;
	int a0 = pattern ? 2 : 1;
	if (argc != a0 + (pattern ? 3 : 4)) {
		fprintf(stderr, "usage: ec_ref K M LEN SEED | ec_ref --pattern K M LEN\n");
		return 2;
	}
	int k = atoi(argv[a0]), m = atoi(argv[a0 + 1]), len = atoi(argv[a0 + 2]);
	uint64_t x = pattern ? 0 : strtoull(argv[a0 + 3], NULL, 0);
	if (k < 1 || m < 1 || k + m > 255 || len < 1) {
		fprintf(stderr, "ec_ref: bad k/m/len\n");
		return 2;
	}
	unsigned char *frag[255];
	for (int i = 0; i < k + m; i++)
		frag[i] = calloc(len, 1);
	for (int j = 0; j < k; j++)
		for (int b = 0; b < len; b++) {
			if (pattern) {
				frag[j][b] = (unsigned char)((j * len + b) * 7 + 3);
			} else {
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				frag[j][b] = (unsigned char)x;
			}
		}
	unsigned char *a = malloc((k + m) * k), *g = malloc(k * m * 32);
	gf_gen_cauchy1_matrix(a, k + m, k);
	ec_init_tables(k, m, &a[k * k], g);
	ec_encode_data(len, k, m, g, frag, &frag[k]);
	for (int i = 0; i < m; i++) {
		if (pattern) {
			for (int b = 0; b < len; b++)
				printf("%02x", frag[k + i][b]);
			printf("\n");
		} else {
			uint64_t h = 0xcbf29ce484222325ull;
			for (int b = 0; b < len; b++) {
				h ^= frag[k + i][b];
				h *= 0x100000001b3ull;
			}
			printf("parity %d fnv1a64 %016llx\n", i, (unsigned long long)h);
		}
	}
	return 0;
}
