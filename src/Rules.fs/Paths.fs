namespace Lb.Rules

open System
open System.Text

/// Why `Paths.normalizeIn` refuses a request path.
[<RequireQualifiedAccess>]
type PathRefusal =
    /// 400: not a path, a broken escape, a control character; or, with `encoded_slashes = "keep"`, an encoded dot
    /// segment or an encoded slash next to a dot segment.
    | Malformed of string
    /// 404, as Apache `AllowEncodedSlashes Off` answers: an encoded slash or backslash (`encoded_slashes = "reject"`).
    | EncodedSlash of string

/// Request paths: normalisation before routing, and the app prefix strip/re-add (HAProxy `reqirep` and
/// Apache `ProxyPassReverse` of the seed, for every app at once).
[<RequireQualifiedAccess>]
module Paths =
    /// RFC 3986 §2.3 unreserved characters: the only ones whose percent-encoding may be decoded without
    /// changing what the URI means (§6.2.2.2).
    let isUnreserved (c: char) =
        Char.IsAsciiLetterOrDigit c || c = '-' || c = '.' || c = '_' || c = '~'

    /// Characters a path may carry literally (RFC 3986 §3.3 pchar less '%', plus '/').
    let private isPathChar (c: char) =
        isUnreserved c || "!$&'()*+,;=:@/".IndexOf c >= 0

    let private hexValue (c: char) =
        if c >= '0' && c <= '9' then int c - int '0'
        elif c >= 'a' && c <= 'f' then int c - int 'a' + 10
        elif c >= 'A' && c <= 'F' then int c - int 'A' + 10
        else -1

    let private appendEncoded (sb: StringBuilder) (b: int) =
        sb.Append('%').Append("0123456789ABCDEF"[b >>> 4]).Append("0123456789ABCDEF"[b &&& 15]) |> ignore

    /// A byte that no path may carry, encoded or not: C0 controls (CR, LF, NUL...) and DEL.
    let private isForbiddenByte (b: int) = b < 0x20 || b = 0x7F

    /// Decodes unreserved percent-escapes (so `%2e%2E` is a dot-segment), upper-cases the others, encodes
    /// characters a path may not hold literally, and refuses control characters. `%2F` stays encoded, so an
    /// encoded slash can never become a path separator for routing.
    let private canonicalEscapes (raw: string) : Result<string, string> =
        let sb = StringBuilder(raw.Length)
        let mutable error = None
        let mutable i = 0
        while error.IsNone && i < raw.Length do
            let c = raw[i]
            if c = '%' then
                if i + 2 < raw.Length && hexValue raw[i + 1] >= 0 && hexValue raw[i + 2] >= 0 then
                    let b = hexValue raw[i + 1] * 16 + hexValue raw[i + 2]
                    if isForbiddenByte b then error <- Some "encoded control character in path"
                    elif b < 0x80 && isUnreserved (char b) then sb.Append(char b) |> ignore
                    else appendEncoded sb b
                    i <- i + 3
                else
                    error <- Some "invalid percent-encoding in path"
            elif int c < 0x80 && isForbiddenByte (int c) then
                error <- Some "control character in path"
            elif isPathChar c then
                sb.Append c |> ignore
                i <- i + 1
            else
                for b in Encoding.UTF8.GetBytes(string c) do
                    appendEncoded sb (int b)
                i <- i + 1
        match error with
        | Some e -> Error e
        | None -> Ok(sb.ToString())

    /// `//a///b` → `/a/b`: empty segments are merged (nginx `merge_slashes`), so `//app1/` routes like `/app1/`.
    let private mergeSlashes (path: string) =
        if not (path.Contains "//") then path
        else
            let sb = StringBuilder(path.Length)
            for c in path do
                if not (c = '/' && sb.Length > 0 && sb[sb.Length - 1] = '/') then sb.Append c |> ignore
            sb.ToString()

    /// After a `.` that starts a segment at `i - 1`: whether the segment is `.` or `..`.
    let private isDotSegmentEnd (path: string) (i: int) =
        i = path.Length || path[i] = '/' || (path[i] = '.' && (i + 1 = path.Length || path[i + 1] = '/'))

    /// RFC 3986 §5.2.4 remove_dot_segments, on a path that starts with '/'. The result starts with '/' and
    /// holds no `.` or `..` segment, so `/app1/../app2/x` is `/app2/x` and `/../x` is `/x`.
    let removeDotSegments (path: string) =
        let segments = path.Split '/'
        let output = Collections.Generic.List<string>()
        // segments[0] is the empty string before the leading '/'.
        for i in 1 .. segments.Length - 1 do
            let segment = segments[i]
            let isLast = i = segments.Length - 1
            match segment with
            | "." -> if isLast then output.Add ""
            | ".." ->
                if output.Count > 0 then output.RemoveAt(output.Count - 1)
                if isLast then output.Add ""
            | s -> output.Add s
        "/" + String.Join("/", output)

    /// Whether `normalize` would return this path (starting with '/') unchanged: only literal path characters
    /// (no '%', nothing to encode, no control), no `//`, no `.` or `..` segment. Nearly every real request is
    /// such a path, and then normalising allocates nothing.
    let isAlreadyNormal (path: string) =
        let mutable normal = true
        let mutable i = 0
        while normal && i < path.Length do
            let c = path[i]
            normal <-
                isPathChar c
                && not (c = '/' && i > 0 && path[i - 1] = '/')
                && not (c = '.' && path[i - 1] = '/' && isDotSegmentEnd path (i + 1))
            i <- i + 1
        normal

    /// `normalize` without its fast path, every step run (on a path starting with '/'): what the fast path
    /// must agree with (a property checks it).
    let normalizeFully (rawPath: string) : Result<string, string> =
        canonicalEscapes rawPath |> Result.map (mergeSlashes >> removeDotSegments)

    /// The path lb routes on and forwards: canonical escapes, merged slashes, no dot-segments.
    /// Rejects (with a reason) paths not starting with '/', bad percent-encodings and control characters.
    let normalize (rawPath: string) : Result<string, string> =
        if String.IsNullOrEmpty rawPath || rawPath[0] <> '/' then
            Error "the request target must be a path starting with '/'"
        elif isAlreadyNormal rawPath then
            Ok rawPath
        else
            normalizeFully rawPath

    /// Whether a canonical path or segment holds an encoded `/` or `\`: canonical escapes are upper-case, a `%25`
    /// (a literal `%`) is never read as the start of one, and a literal `\` was encoded to `%5C`.
    let holdsEncodedSlash (canonical: string) =
        canonical.Contains("%2F", StringComparison.Ordinal) || canonical.Contains("%5C", StringComparison.Ordinal)

    let private isDot (s: string) = s = "." || s = ".."

    /// `encoded_slashes = "keep"`: why a canonical segment (`raw` as received) may not reach a backend that decodes
    /// it, or None. A segment that was percent-encoded and decodes to `.` or `..` (`%2e%2e`, `.%2e`) is a hidden dot
    /// segment; a piece between encoded separators that is `.` or `..` (`..%2F`, `%2F..`, `.%2F`, `%5C..`) becomes
    /// one once the backend decodes `%2F`, the traversal of the issue (`/app1/..%2Fapp2/x`).
    let private keepRefusal (raw: string) (canonical: string) =
        if raw.Contains '%' && isDot canonical then
            Some $"an encoded dot segment ('{raw}')"
        elif holdsEncodedSlash canonical
             && canonical.Split([| "%2F"; "%5C" |], StringSplitOptions.None) |> Array.exists isDot then
            Some $"an encoded slash next to a dot segment ('{canonical}')"
        else
            None

    /// The path lb routes on and forwards under `[defaults] encoded_slashes = mode`, the pure decision for every
    /// request (`Routing.decide`, `lb explain`). Refuses what `normalize` refuses (400), and then:
    /// - `Reject` (Apache `AllowEncodedSlashes Off`): a path holding `%2F` or `%5C` (any case, or a literal `\`) → 404;
    /// - `Keep` (`NoDecode`): forwarded as `normalize` makes it (`%2F` stays data), but 400 for an encoded dot
    ///   segment or an encoded slash next to a dot segment (`keepRefusal`);
    /// - `Decode` (`On`): `%2F` and `%5C` become `/` (WHATWG URL: `\` is a separator in http URLs), then empty and
    ///   dot segments are resolved as literal ones are (RFC 3986 §5.2.4): `/app1/..%2Fapp2/x` is `/app2/x`, so a
    ///   backend never sees the dot segment Apache `On` hands it (Apache removes dots before it decodes).
    /// A path already normal (no `%`, `\`, `//` or dot segment) is returned as it is, in every mode.
    let normalizeIn (mode: EncodedSlashes, rawPath: string) : Result<string, PathRefusal> =
        if String.IsNullOrEmpty rawPath || rawPath[0] <> '/' then
            Error(PathRefusal.Malformed "the request target must be a path starting with '/'")
        elif isAlreadyNormal rawPath then
            Ok rawPath
        else
            match canonicalEscapes rawPath with
            | Error e -> Error(PathRefusal.Malformed e)
            | Ok canonical ->
                match mode with
                | EncodedSlashes.Reject when holdsEncodedSlash canonical ->
                    Error(PathRefusal.EncodedSlash "an encoded slash or backslash in the path (encoded_slashes = \"reject\")")
                | EncodedSlashes.Reject -> Ok(removeDotSegments (mergeSlashes canonical))
                | EncodedSlashes.Keep ->
                    // canonicalEscapes neither adds nor removes a literal '/': raw and canonical segments align.
                    let raws = rawPath.Split '/'
                    let canonicals = canonical.Split '/'
                    let refusal =
                        Seq.zip raws canonicals |> Seq.tryPick (fun (r, c) -> keepRefusal r c)
                    match refusal with
                    | Some reason -> Error(PathRefusal.Malformed $"{reason} (encoded_slashes = \"keep\")")
                    | None -> Ok(removeDotSegments (mergeSlashes canonical))
                | EncodedSlashes.Decode ->
                    let decoded = canonical.Replace("%2F", "/", StringComparison.Ordinal).Replace("%5C", "/", StringComparison.Ordinal)
                    Ok(removeDotSegments (mergeSlashes decoded))

    /// Splits `/seg/rest` into `seg` and the rest (`/rest`, or None for `/seg` with no slash after it).
    let firstSegment (path: string) : string * string option =
        match path.IndexOf('/', 1) with
        | -1 -> path.Substring 1, None
        | i -> path.Substring(1, i - 1), Some(path.Substring i)

    /// A query is forwarded as received, but never with a control character (request splitting).
    let isSafeQuery (query: string) =
        // A loop, not Seq.forall: this runs on every request and must not allocate.
        let mutable safe = true
        let mutable i = 0
        while safe && i < query.Length do
            safe <- not (isForbiddenByte (int query[i]))
            i <- i + 1
        safe
