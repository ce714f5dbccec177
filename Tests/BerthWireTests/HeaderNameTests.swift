import BerthWire
import Testing

/// Header names compare as HTTP compares them: ASCII letters in any case, every other byte exactly.
struct HeaderNameTests {
    @Test(arguments: [
        ("content-length", "Content-Length", true), ("HOST", "host", true), ("", "", true), ("x-1_~", "X-1_~", true),
        ("host", "hosts", false), ("host", "hoSt ", false), ("a", "b", false), ("@", "`", false), ("[", "{", false),
        ("é", "É", false), ("straße", "STRASSE", false), ("naïve", "naïve", true),
    ])
    func caseInsensitiveEquals(a: String, b: String, equal: Bool) {
        #expect(a.caseInsensitiveEquals(b) == equal)
        #expect(b.caseInsensitiveEquals(a) == equal)
    }
}
