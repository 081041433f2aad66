/* SPDX-License-Identifier: MIT */
#include "aws/endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>

#include "basic/util.h"

/* Is the host of @authority (@len bytes, "host[:port]" or "[v6][:port]")
 * a loopback address? Only literal addresses and "localhost" count: a
 * name that resolves to 127.0.0.1 today may not tomorrow. */
static bool authority_is_loopback(const char *authority, size_t len) {
        char host[INET6_ADDRSTRLEN + 1];
        const char *end;
        size_t n;

        if (authority[0] == '[') {
                end = memchr(authority, ']', len);
                if (!end)
                        return false;
                n = (size_t) (end - authority - 1);
                if (n >= sizeof host)
                        return false;
                memcpy(host, authority + 1, n);
                host[n] = 0;

                struct in6_addr a6;
                return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
        }
        end = memchr(authority, ':', len);
        n = end ? (size_t) (end - authority) : len;
        if (n >= sizeof host)
                return false;
        memcpy(host, authority, n);
        host[n] = 0;
        if (strcasecmp(host, "localhost") == 0)
                return true;

        struct in_addr a4;
        return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

const char *endpoint_url_problem(const char *url) {
        const char *authority;
        bool https;
        size_t n;

        if (!url)
                return "is missing";
        if (startswith(url, "https://"))
                https = true;
        else if (startswith(url, "http://"))
                https = false;
        else
                return "must start with http:// or https://";
        authority = url + (https ? 8 : 7);
        n = strcspn(authority, "/?#");
        if (n == 0 || strlen(url) > ENDPOINT_URL_MAX || !memory_no_controls(url, strlen(url)) ||
            strpbrk(url, " \t\"<>\\^`{|}"))
                return "is not a valid URL";
        /* user:password@host would put a credential where it does not belong. */
        if (memchr(authority, '@', n))
                return "must not contain a user name or password";
        if (!https && !authority_is_loopback(authority, n))
                return "uses http:// to a host that is not a loopback address, which would send signed requests "
                       "and new secrets in clear text (use https://, or http:// only to 127.0.0.1, ::1 or "
                       "localhost)";
        return NULL;
}
