import Testing

@testable import BerthHTTP

/// RFC 9110 §5.6.2: a token is one or more of ALPHA, DIGIT and ``!#$%&'*+-.^_`|~``, and nothing else.
struct HTTPSyntaxTests {
    @Test func tokenBytesAreExactlyTheRFCsOnes() {
        let listed = Set("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)
        for byte in UInt8.min...UInt8.max {
            #expect(HTTPSyntax.isTokenByte(byte) == listed.contains(byte), "byte \(byte)")
        }
    }

    @Test func tokens() {
        #expect(HTTPSyntax.isToken("GET") && HTTPSyntax.isToken("X-Request-Id") && HTTPSyntax.isToken("a!#$%&'*+-.^_`|~9"))
        #expect(!HTTPSyntax.isToken("") && !HTTPSyntax.isToken("GET /") && !HTTPSyntax.isToken("X:A")
            && !HTTPSyntax.isToken("Ñame") && !HTTPSyntax.isToken("a\u{0}") && !HTTPSyntax.isToken("\"q\""))
    }
}
