namespace Lb.Rules

open System

/// HTTP/1.1 message rules that hold between hops: which fields a proxy drops (RFC 9110 §7.6.1) and which
/// Content-Length values frame a message (RFC 9112 §6.3, RFC 9110 §8.6). The shell reads the header values,
/// asks here, and removes or refuses.
[<RequireQualifiedAccess>]
module HopByHop =

    /// Framing and routing fields that a Connection option can never remove: the proxy frames the message anew
    /// (Content-Length, Transfer-Encoding: dropping one would change where the body ends, the smuggling risk of
    /// RFC 9112 §6.3), and a request must keep its Host (RFC 9112 §3.2). lb's own fields (X-Forwarded-*, its
    /// cookie, its Cache-Control) are added after the removal and so are never removed either.
    let private kept =
        Collections.Generic.HashSet<string>([ "host"; "content-length"; "transfer-encoding" ], StringComparer.OrdinalIgnoreCase)

    let private keepAliveOnly = [| "keep-alive" |]
    let private closeOnly = [| "close" |]

    /// RFC 9110 §7.6.1: the fields a proxy MUST remove before forwarding a message, as named by its `Connection`
    /// header values: each comma-separated option, OWS trimmed, lower-case, once. Rejects (leaves out) an empty
    /// option, one that is not a token (it cannot name a field), and Host, Content-Length and Transfer-Encoding.
    /// `close` and `keep-alive` are options too: they name the Close and Keep-Alive fields, which go as well.
    [<CompiledName("ConnectionListed")>]
    let connectionListed (connectionValues: string array) : string array =
        // Nearly every HTTP/1.1 request says only one of these two: no parsing, no allocation.
        match connectionValues with
        | [| v |] when String.Equals(v, "keep-alive", StringComparison.OrdinalIgnoreCase) -> keepAliveOnly
        | [| v |] when String.Equals(v, "close", StringComparison.OrdinalIgnoreCase) -> closeOnly
        | _ ->
            connectionValues
            |> Array.collect (fun v -> v.Split ',')
            |> Array.map (fun o -> o.Trim([| ' '; '\t' |]).ToLowerInvariant())
            |> Array.filter (fun o -> o.Length > 0 && Seq.forall Token.isTokenChar o && not (kept.Contains o))
            |> Array.distinct

    /// RFC 9112 §6.3 item 5 and RFC 9110 §8.6: `Content-Length = 1*DIGIT`, with the OWS around a field value
    /// (RFC 9112 §5.1) allowed. Rejects everything else, each an unrecoverable framing error answered 400: the
    /// empty value, a sign (`+5`, `-0`: .NET's number parser, and so Kestrel, reads them as 5 and 0), spaces or
    /// any other character inside (`5 5`, `5;`, `0x5`), and lists, even of equal values (`5, 5`, which §8.6 lets
    /// a recipient accept; Kestrel refuses it, and one rule on both sides of lb is the point).
    [<CompiledName("IsValidContentLength")>]
    let isValidContentLength (value: string) : bool =
        let digits = value.Trim([| ' '; '\t' |])
        digits.Length > 0 && Seq.forall Char.IsAsciiDigit digits
