#include "sigv4/canonical_request.h"

#include <gtest/gtest.h>

#include "sigv4/crypto.h"

namespace pw::sigv4::canonical_request_test {
namespace {

TEST(UriEncode, KeepsUnreservedAndEncodesTheRestUppercase) {
  EXPECT_EQ(UriEncode("AZaz09-_.~", false), "AZaz09-_.~");
  EXPECT_EQ(UriEncode("a b/c+d=e%f*", false), "a%20b%2Fc%2Bd%3De%25f%2A");
  EXPECT_EQ(UriEncode("a b/c", true), "a%20b/c");
  EXPECT_EQ(UriEncode("\xe1\x88\xb4", false), "%E1%88%B4");
}

TEST(PercentDecode, DecodesValidEscapesOnly) {
  EXPECT_EQ(PercentDecode("a%20b%2fc+d"), "a b/c+d");
  EXPECT_EQ(PercentDecode("100%"), "100%");
  EXPECT_EQ(PercentDecode("%zz%2"), "%zz%2");
}

TEST(CanonicalUri, EncodesNonS3PathsAgain) {
  EXPECT_EQ(CanonicalUri("/", "codepipeline"), "/");
  EXPECT_EQ(CanonicalUri("", "codepipeline"), "/");
  EXPECT_EQ(CanonicalUri("/example%20space/", "service"), "/example%2520space/");
  // A raw (unencoded) path as in AWS's get-utf8 and get-space test cases.
  EXPECT_EQ(CanonicalUri("/\xe1\x88\xb4", "service"), "/%E1%88%B4");
  EXPECT_EQ(CanonicalUri("/example space/", "service"), "/example%20space/");
}

TEST(CanonicalUri, NormalizesNonS3PathsLikeAwsTestSuite) {
  EXPECT_EQ(CanonicalUri("//example//", "service"), "/example/");       // get-slashes
  EXPECT_EQ(CanonicalUri("/example1/example2/../..", "service"), "/");  // relative-relative
  EXPECT_EQ(CanonicalUri("/example/..", "service"), "/");               // get-relative
  EXPECT_EQ(CanonicalUri("/./", "service"), "/");                       // slash-dot-slash
  EXPECT_EQ(CanonicalUri("/./example", "service"), "/example");         // pointless-dot
  EXPECT_EQ(CanonicalUri("/a/./b/../c/", "service"), "/a/c/");
}

TEST(CanonicalUri, UsesS3PathsAsReceived) {
  EXPECT_EQ(CanonicalUri("/my-bucket/some%20key", "s3"), "/my-bucket/some%20key");
  EXPECT_EQ(CanonicalUri("//a/../b/", "s3"), "//a/../b/");
  EXPECT_EQ(CanonicalUri("", "s3"), "/");
}

TEST(CanonicalQuery, SortsByKeyThenValueAndReencodes) {
  EXPECT_EQ(CanonicalQuery(""), "");
  EXPECT_EQ(CanonicalQuery("Param2=value2&Param1=value1"), "Param1=value1&Param2=value2");
  EXPECT_EQ(CanonicalQuery("Param1=value2&Param1=Value1"), "Param1=Value1&Param1=value2");
  EXPECT_EQ(CanonicalQuery("acl"), "acl=");
  EXPECT_EQ(CanonicalQuery("b=1&&a="), "a=&b=1");
  EXPECT_EQ(CanonicalQuery("k=a%2fb%20c&j=x/y:z"), "j=x%2Fy%3Az&k=a%2Fb%20c");
  EXPECT_EQ(CanonicalQuery("prefix=a+b"), "prefix=a%2Bb");
}

TEST(TrimAll, TrimsAndCollapsesSpaces) {
  EXPECT_EQ(TrimAll("  \"a   b \t c\"  "), "\"a b c\"");
  EXPECT_EQ(TrimAll(""), "");
  EXPECT_EQ(TrimAll("   "), "");
}

TEST(CanonicalHeaderMap, LowercasesAndJoinsRepeatedNamesInOrder) {
  CanonicalHeaders h = CanonicalHeaderMap(
      {{"My-Header1", "value4"}, {"Host", "example.amazonaws.com"}, {"my-header1", " value1 "}});
  EXPECT_EQ(h.size(), 2u);
  EXPECT_EQ(h["my-header1"], "value4,value1");
  EXPECT_EQ(SignedHeaderNames(h), "host;my-header1");
}

TEST(CanonicalRequest, MatchesAwsGetVanilla) {
  CanonicalHeaders h =
      CanonicalHeaderMap({{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}});
  std::string cr =
      CanonicalRequest("GET", CanonicalUri("/", "service"), CanonicalQuery(""), h, Sha256Hex(""));
  EXPECT_EQ(cr,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
            "host;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(
      StringToSign("20150830T123600Z", "20150830/us-east-1/service/aws4_request", Sha256Hex(cr)),
      "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
      "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
}

TEST(SigningKeyFor, MatchesAwsDocumentationExample) {
  // "Examples of how to derive a signing key for Signature Version 4".
  EXPECT_EQ(HexEncode(SigningKeyFor("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215",
                                    "us-east-1", "iam")),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

TEST(ConstantTimeEquals, ComparesContentAndLength) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
}

TEST(AmzDate, FormatsAndParsesUtc) {
  EXPECT_EQ(FormatAmzDate(1440938160), "20150830T123600Z");
  EXPECT_EQ(FormatAmzDate(0), "19700101T000000Z");
  EXPECT_EQ(ParseAmzDate("20150830T123600Z"), 1440938160);
  EXPECT_EQ(ParseAmzDate("20261125T120000Z"), 1795608000);
  EXPECT_EQ(ParseAmzDate("20240229T000000Z"), 1709164800);
}

TEST(AmzDate, RejectsOtherShapesAndImpossibleDates) {
  for (const char* bad :
       {"", "20150830T123600", "2015-08-30T12:36:00Z", "20150830t123600Z", "20150230T000000Z",
        "20151301T000000Z", "20150830T246000Z", "20150830T123600Z ", "2015083OT123600Z"}) {
    EXPECT_FALSE(ParseAmzDate(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace pw::sigv4::canonical_request_test
