/* SPDX-License-Identifier: MIT */
/*
 * rss-floor: the resident set of a process that only loads and initialises
 * keyrotd's libraries, nothing else; the floor under keyrotd's own peak and
 * idle RSS. Built by tests/bench/rss-floor in several variants:
 * -DWITH_DEPS (OpenSSL libcrypto and libssl, libsystemd, libsodium, libyaml,
 * json-c, expat, each initialised the way keyrotd does), -DWITH_CURL (plus
 * libcurl). Prints /proc/self/status's VmRSS, RssAnon and RssFile in KiB.
 */
#include <stdio.h>
#include <string.h>
#ifdef WITH_DEPS
#include <expat.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <sodium.h>
#include <systemd/sd-event.h>
#include <yaml.h>
#endif
#ifdef WITH_CURL
#include <curl/curl.h>
#endif

int main(void) {
#ifdef WITH_DEPS
        sd_event *e = NULL;
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned md_len;
        yaml_parser_t yp;

        if (sodium_init() < 0 || sd_event_default(&e) < 0 ||
            !EVP_Digest("x", 1, md, &md_len, EVP_sha256(), NULL) || !yaml_parser_initialize(&yp))
                return 1;
        yaml_parser_delete(&yp);
        json_object_put(json_tokener_parse("{\"cmd\":\"status\"}"));
        XML_ParserFree(XML_ParserCreate(NULL));
        SSL_CTX_free(SSL_CTX_new(TLS_client_method()));
#endif
#ifdef WITH_CURL
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
                return 1;
        curl_easy_cleanup(curl_easy_init());
        curl_multi_cleanup(curl_multi_init());
#endif
        FILE *f = fopen("/proc/self/status", "re");
        char line[256];

        if (!f)
                return 1;
        while (fgets(line, sizeof line, f))
                if (!strncmp(line, "VmRSS:", 6) || !strncmp(line, "RssAnon:", 8) || !strncmp(line, "RssFile:", 8))
                        fputs(line, stdout);
        fclose(f);
        return 0;
}
