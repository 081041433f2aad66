/* SPDX-License-Identifier: MIT */
/* test-hex.c — hex digits both ways (basic/hex.h). */
#include "basic/hex.h"
#include "basic/util.h"
#include "tap.h"

static void test_unhexchar(void) {
        static const char digits[] = "0123456789abcdef", upper[] = "ABCDEF";
        bool all = true;

        for (int i = 0; i < 16; i++)
                all = all && unhexchar(digits[i]) == i;
        for (int i = 0; i < 6; i++)
                all = all && unhexchar(upper[i]) == 10 + i;
        ok(all, "every digit in either case");
        ok(unhexchar('g') == -EINVAL && unhexchar('G') == -EINVAL && unhexchar('/') == -EINVAL &&
                   unhexchar(':') == -EINVAL && unhexchar('@') == -EINVAL && unhexchar('`') == -EINVAL &&
                   unhexchar(' ') == -EINVAL && unhexchar('\0') == -EINVAL && unhexchar((char) 0xb0) == -EINVAL,
           "neighbours of the digit ranges, NUL and high bytes refused");
}

static void test_unhexbyte(void) {
        ok(unhexbyte("00") == 0 && unhexbyte("7B") == 0x7b && unhexbyte("7b") == 0x7b && unhexbyte("ff") == 255 &&
                   unhexbyte("FfX") == 255,
           "two digits, the rest ignored");
        ok(unhexbyte("") == -EINVAL && unhexbyte("7") == -EINVAL && unhexbyte("g0") == -EINVAL &&
                   unhexbyte("0g") == -EINVAL,
           "short or bad input refused");

        /* "7" then NUL: the second digit is the terminator, never beyond. */
        char *p = malloc(1);
        if (p) {
                p[0] = 0;
                ok(unhexbyte(p) == -EINVAL, "an empty heap string is not read past its NUL");
                free(p);
        }
}

static void test_encode(void) {
        static const uint8_t bytes[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xff };
        char out[2 * sizeof(bytes) + 1];

        hexmem(bytes, sizeof(bytes), out);
        ok_eq_str(out, "00017f80abff", "hexmem: lowercase, NUL-terminated");
        hexmem(bytes, 0, out);
        ok_eq_str(out, "", "hexmem of nothing");
        ok(hexchar(10) == 'a' && hexchar(0x1f) == 'f' && hexchar_upper(10) == 'A' && hexchar_upper(0x10) == '0',
           "hexchar: low four bits");

        bool round = true;
        for (unsigned b = 0; b < 256; b++) {
                char two[3] = { hexchar_upper(b >> 4), hexchar(b), 0 };
                round = round && unhexbyte(two) == (int) b;
        }
        ok(round, "every byte round-trips");
}

int main(void) {
        test_unhexchar();
        test_unhexbyte();
        test_encode();
        return tap_done();
}
