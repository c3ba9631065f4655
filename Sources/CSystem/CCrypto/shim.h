// Only SHA-256 is used (shard checksums, tokenizer hashes): the EVP digest interface of OpenSSL 3.
#include <openssl/evp.h>
