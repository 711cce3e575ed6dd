namespace Lb.Rules

open System

/// The RFC 9110 §5.6.2 token, the one check for every name lb reads or writes as a token: methods (§9.1), header
/// field names (§5.1) and cookie names (RFC 6265 §4.1.1 cookie-name is RFC 2616's token: the same characters).
[<RequireQualifiedAccess>]
module Token =

    /// tchar: "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA.
    let isTokenChar (c: char) =
        Char.IsAsciiLetterOrDigit c || "!#$%&'*+-.^_`|~".IndexOf c >= 0

    /// 1*tchar. Rejects the empty string, spaces, controls, separators and non-ASCII.
    [<CompiledName("IsToken")>]
    let isToken (text: string) : bool =
        // A loop, not Seq.forall: it runs on request paths and must not allocate.
        let mutable ok = not (String.IsNullOrEmpty text)
        let mutable i = 0
        while ok && i < text.Length do
            ok <- isTokenChar text[i]
            i <- i + 1
        ok
