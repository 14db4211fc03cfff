#include "buckets/digests.h"

#include <gtest/gtest.h>

namespace pw::buckets::digests_test {
namespace {

std::string Sum(const char* algo, std::string_view data) {
  Digester d(algo);
  d.Update(data.substr(0, 3));
  d.Update(data.substr(3));
  return d.Finish().checksum;
}

TEST(Digests, ChecksumsMatchTheCheckValues) {
  // "123456789" check values of each CRC, big-endian, base64.
  EXPECT_EQ(Sum("CRC32", "123456789"), Base64Encode("\xCB\xF4\x39\x26"));
  EXPECT_EQ(Sum("CRC32C", "123456789"), Base64Encode("\xE3\x06\x92\x83"));
  EXPECT_EQ(Sum("CRC64NVME", "123456789"), Base64Encode("\xAE\x8B\x14\x86\x0A\x79\x98\x88"));
  EXPECT_EQ(Sum("SHA256", "abc"), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
  EXPECT_EQ(Sum("SHA1", "abc"), "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
  Digester md5;
  md5.Update("abc");
  EXPECT_EQ(md5.Finish().md5_hex, "900150983cd24fb0d6963f7d28e17f72");
}

TEST(Digests, Base64RoundTrips) {
  for (const std::string& s :
       {std::string(), std::string("a"), std::string("ab"), std::string("abc"), std::string("abcd"),
        std::string("\xff\x00\x10", 3)}) {
    std::string back;
    ASSERT_TRUE(Base64Decode(Base64Encode(s), back));
    EXPECT_EQ(back, s);
  }
  std::string out;
  EXPECT_FALSE(Base64Decode("abc", out));
  EXPECT_FALSE(Base64Decode("ab!d", out));
}

}  // namespace
}  // namespace pw::buckets::digests_test
