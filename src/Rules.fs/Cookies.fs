namespace Lb.Rules

open System
open System.Security.Cryptography
open System.Text

/// How an app's persistence cookie names the server a client is pinned to.
[<RequireQualifiedAccess>]
type CookieValueMode =
    /// HAProxy's `server app1_1 ... cookie app1_1`: the server's configured `cookie` value, else its name.
    | Named
    /// A digest of app name, server name and address: shows no name, and is the same on every lb node
    /// that loads the same config (no per-node secret, so a failover keeps clients pinned).
    | Opaque

/// One `name=value` pair of a `Cookie:` request header (RFC 6265 §4.2.1, §5.4).
/// A pair sent without `=` has an empty Name and the whole text as Value, as browsers send it
/// (RFC 6265bis §5.6 step 3: "foo" is a cookie with an empty name).
[<Struct>]
type CookiePair = { Name: string; Value: string }

/// The persistence cookie: finding, removing and reordering it in `Cookie:` request headers,
/// its value codec, its `Set-Cookie` line, and the `Cache-Control` merge of HAProxy's `nocache`.
///
/// Parsing follows what user agents send (RFC 6265 §5.4: pairs joined by "; ") and tolerates
/// anything else a client or an old intermediary may produce: `;` is the only separator, spaces and
/// tabs around pairs and around the first `=` are ignored (RFC 6265 §5.2 step 4 trims them), a value
/// keeps every later `=`, quote, comma, space and non-ASCII character. Commas never split pairs: RFC 2965
/// did, but RFC 6265 values may hold commas, and splitting on them is how pairs get misattributed.
/// A pair holding a control character other than HTAB is dropped everywhere: no user agent stores such
/// a cookie (RFC 6265bis §5.6 step 1), and dropping it keeps CR/LF out of every header we emit.
[<RequireQualifiedAccess>]
module Cookies =

    /// The default persistence cookie name (the seed's `cookie SRVID insert indirect nocache`).
    [<Literal>]
    let DefaultName = "SRVID"

    // ---- Cookie: header syntax ------------------------------------------------------------------

    let private ows = [| ' '; '\t' |]

    let private isControl (c: char) = (c < ' ' && c <> '\t') || c = '\127'

    let private hasControl (s: string) = s |> Seq.exists isControl

    /// A pair as it appeared (trimmed), so `remove` and `moveFirst` pass other cookies on byte for byte.
    [<Struct>]
    type private Segment = { Text: string; Pair: CookiePair }

    let private toSegment (text: string) =
        match text.IndexOf '=' with
        | -1 -> { Text = text; Pair = { Name = ""; Value = text } }
        | i ->
            { Text = text
              Pair = { Name = text.Substring(0, i).Trim ows; Value = text.Substring(i + 1).Trim ows } }

    /// The pairs of one header value, and whether any was dropped for holding a control character.
    let private segments (header: string) : Segment[] * bool =
        if String.IsNullOrEmpty header then
            [||], false
        else
            let pieces = header.Split ';' |> Array.map (fun p -> p.Trim ows) |> Array.filter (fun p -> p <> "")
            let clean = pieces |> Array.filter (hasControl >> not)
            clean |> Array.map toSegment, clean.Length <> pieces.Length

    /// RFC 6265 §5.4 step 4: pairs are serialized joined by "; ".
    let private serialize (kept: Segment[]) =
        kept |> Array.map (fun s -> s.Text) |> String.concat "; "

    /// Cookie names are case-sensitive (RFC 6265 §5.3 step 11 matches stored cookies by exact name; HAProxy
    /// compares with memcmp). An empty name never matches: it would select nameless cookies.
    let private named (name: string) (s: Segment) =
        name <> "" && String.Equals(s.Pair.Name, name, StringComparison.Ordinal)

    /// Every pair of one `Cookie:` header value, in order. Null or empty gives none.
    [<CompiledName("Parse")>]
    let parse (header: string) : CookiePair[] =
        fst (segments header) |> Array.map (fun s -> s.Pair)

    /// Every pair of all `Cookie:` header values of a request, in order. HTTP/2 may split the cookie into
    /// several fields (RFC 9113 §8.2.3); they mean the same as one field joined by "; ".
    [<CompiledName("ParseHeaders")>]
    let parseHeaders (headers: string[]) : CookiePair[] =
        headers |> Array.collect parse

    /// The value of the first cookie called `name` in one header value. Duplicates can happen (one cookie
    /// per path, RFC 6265 §5.4 step 2 sends the longest path first), so the first is the most specific.
    [<CompiledName("TryFind")>]
    let tryFind (name: string, header: string) : string option =
        fst (segments header) |> Array.tryFind (named name) |> Option.map (fun s -> s.Pair.Value)

    /// Like `tryFind`, across all `Cookie:` header values of a request, in order.
    [<CompiledName("TryFindInHeaders")>]
    let tryFindInHeaders (name: string, headers: string[]) : string option =
        headers |> Array.tryPick (fun h -> tryFind (name, h))

    /// Every value of the cookies called `name`, across all headers, in order (most specific path first).
    [<CompiledName("ValuesIn")>]
    let valuesIn (name: string, headers: string[]) : string[] =
        headers
        |> Array.collect (fun h -> fst (segments h))
        |> Array.filter (named name)
        |> Array.map (fun s -> s.Pair.Value)

    /// The header with every cookie called `name` removed (HAProxy `indirect`: the application never sees
    /// the persistence cookie). Other pairs keep their text and order. None means no pair is left and the
    /// header must be dropped. A header that loses nothing is returned unchanged.
    [<CompiledName("Remove")>]
    let remove (name: string, header: string) : string option =
        let all, dropped = segments header
        let kept = all |> Array.filter (named name >> not)

        if kept.Length = 0 then None
        elif kept.Length = all.Length && not dropped then Some header
        else Some(serialize kept)

    /// `remove` applied to every `Cookie:` header value of a request; headers left empty are omitted.
    [<CompiledName("RemoveFromHeaders")>]
    let removeFromHeaders (name: string, headers: string[]) : string[] =
        headers |> Array.choose (fun h -> remove (name, h))

    /// The seed's Apache workaround for HAProxy < 1.3.23, which missed the persistence cookie after
    /// cookies with special characters:
    /// `RequestHeader edit Cookie: "^(.*; *)?(SRVID=[^ ;]+) *;? *(.*)$" "$2; $1 $3"`.
    /// The cookies called `name` move to the front (in their order), the others follow in theirs, joined
    /// by "; " as in the seed's table. Without such a cookie the header is returned unchanged, like the
    /// regex that does not match. Opt-in, for chains that still have a legacy proxy behind lb.
    [<CompiledName("MoveFirst")>]
    let moveFirst (name: string, header: string) : string =
        let all, dropped = segments header
        let pinned, others = all |> Array.partition (named name)

        if pinned.Length = 0 && not dropped then header
        else serialize (Array.append pinned others)

    /// One header value from several, as RFC 9113 §8.2.3 says to join split HTTP/2 cookie fields ("; ").
    /// None when no pair is left.
    [<CompiledName("Combine")>]
    let combine (headers: string[]) : string option =
        match headers |> Array.collect (fun h -> fst (segments h)) with
        | [||] -> None
        | all -> Some(serialize all)

    // ---- Names and values we emit ---------------------------------------------------------------

    /// RFC 6265 §4.1.1: cookie-name is a token (`Token.isToken`).
    [<CompiledName("IsValidName")>]
    let isValidName (name: string) : bool = Token.isToken name

    /// RFC 6265 §4.1.1: cookie-octet is visible ASCII except DQUOTE, comma, semicolon and backslash.
    /// A persistence value must be non-empty (an empty one would identify nothing) and unquoted.
    [<CompiledName("IsValidValue")>]
    let isValidValue (value: string) : bool =
        not (String.IsNullOrEmpty value)
        && value |> Seq.forall (fun c -> c > ' ' && c < '\127' && c <> '"' && c <> ',' && c <> ';' && c <> '\\')

    // ---- Value codec ----------------------------------------------------------------------------

    /// Base64url characters of the digest kept in an opaque value: 96 bits, so two servers of a config
    /// never collide in practice, and the value stays short.
    [<Literal>]
    let OpaqueLength = 16

    /// The opaque value of a server: base64url (RFC 4648 §5) of SHA-256(app "\n" server "\n" address),
    /// first `OpaqueLength` characters. It depends on the config alone, so every node computes the same
    /// value and honours the other's cookies. It hides names from casual view only: without a secret,
    /// anyone who can guess app, server and address can recompute it. Names hold no "\n" (config rejects
    /// them), so the three fields cannot run into one another. The address is part of the identity:
    /// a server moved to a new address is a new server and its clients are redispatched.
    [<CompiledName("OpaqueValue")>]
    let opaqueValue (appName: string, serverName: string, address: string) : string =
        let input = Encoding.UTF8.GetBytes(appName + "\n" + serverName + "\n" + address)
        let digest = SHA256.HashData(input)
        System.Buffers.Text.Base64Url.EncodeToString(ReadOnlySpan digest).Substring(0, OpaqueLength)

    /// The persistence cookie value naming a server. Named: the configured `cookie` value, else the server
    /// name (HAProxy's `server ... cookie <value>`). Opaque: `opaqueValue`. Validate the results of an
    /// app with `validateServerValues` when loading config.
    [<CompiledName("CookieValueFor")>]
    let cookieValueFor
        (mode: CookieValueMode, appName: string, serverName: string, address: string, configured: string option)
        : string =
        match mode with
        | CookieValueMode.Named -> configured |> Option.defaultValue serverName
        | CookieValueMode.Opaque -> opaqueValue (appName, serverName, address)

    let private octetsHint = "non-empty visible ASCII without quote, comma, semicolon or backslash"

    /// Every problem with the cookie values of one app's servers (index-aligned with its servers): values
    /// that are not RFC 6265 cookie-octets, and duplicates (a cookie must identify one server). Empty when
    /// the values are usable.
    [<CompiledName("ValidateServerValues")>]
    let validateServerValues (values: string[]) : string list =
        let invalid =
            values
            |> Array.indexed
            |> Array.filter (fun (_, v) -> not (isValidValue v))
            |> Array.map (fun (i, v) ->
                $"server {i + 1}: cookie value \"{v}\" must be {octetsHint} (RFC 6265 §4.1.1)")

        let duplicates =
            values
            |> Array.countBy id
            |> Array.filter (fun (_, n) -> n > 1)
            |> Array.map (fun (v, n) -> $"cookie value \"{v}\" is used by {n} servers; each must be unique")

        List.ofArray (Array.append invalid duplicates)

    // ---- Set-Cookie -----------------------------------------------------------------------------

    /// RFC 6265 §4.1.1 path-value: CHARs except CTLs and ";"; it must start with "/" or user agents
    /// replace it with the default path (§5.2.4).
    let private isValidPath (path: string) =
        not (String.IsNullOrEmpty path)
        && path.[0] = '/'
        && path |> Seq.forall (fun c -> c >= ' ' && c < '\127' && c <> ';')

    /// The `Set-Cookie` value inserting the persistence cookie (HAProxy `insert`):
    /// `NAME=VALUE; Path=PATH; HttpOnly[; Secure]; SameSite=Lax`. A session cookie (no Expires/Max-Age,
    /// as HAProxy inserts it), scoped to the app's path so apps never see each other's cookie, HttpOnly
    /// because scripts have no use for it, Secure when the public scheme is https, SameSite=Lax so
    /// top-level navigations from other sites stay pinned (RFC 6265bis, SameSite attribute).
    /// Rejects, listing every problem: a name that is not a token (RFC 6265 §4.1.1), a value that is not
    /// non-empty cookie-octets, a path that is not "/"-prefixed CHARs without CTL or ";", a `__Secure-`
    /// name without secure, and a `__Host-` name unless secure with Path=/ (RFC 6265bis §4.1.3).
    /// The output therefore never holds CR, LF or an injected attribute.
    [<CompiledName("SetCookie")>]
    let setCookie (name: string, value: string, path: string, secure: bool) : Result<string, string list> =
        let prefixed (p: string) =
            not (String.IsNullOrEmpty name) && name.StartsWith(p, StringComparison.OrdinalIgnoreCase)

        let errors =
            [ if not (isValidName name) then
                  yield $"cookie name \"{name}\" must be an RFC 6265 token (visible ASCII, no separators)"
              if not (isValidValue value) then
                  yield $"cookie value \"{value}\" must be non-empty RFC 6265 cookie-octets"
              if not (isValidPath path) then
                  yield $"cookie path \"{path}\" must start with / and hold no control character or ;"
              if prefixed "__Secure-" && not secure then
                  yield "a __Secure- cookie needs https (RFC 6265bis §4.1.3.1)"
              if prefixed "__Host-" && not (secure && path = "/") then
                  yield "a __Host- cookie needs https and Path=/ (RFC 6265bis §4.1.3.2)" ]

        match errors with
        | [] ->
            let secureAttr = if secure then "; Secure" else ""
            Ok(name + "=" + value + "; Path=" + path + "; HttpOnly" + secureAttr + "; SameSite=Lax")
        | errors -> Error errors

    // ---- Cache-Control (nocache) ----------------------------------------------------------------

    /// Splits a list-based field value at commas outside quoted strings (RFC 9110 §5.6.1, §5.6.4):
    /// `no-cache="set-cookie, x"` is one directive.
    let private splitList (value: string) : string list =
        let parts = ResizeArray<string>()
        let current = StringBuilder()
        let mutable quoted = false
        let mutable escaped = false

        for c in value do
            if escaped then
                escaped <- false
                current.Append c |> ignore
            elif quoted && c = '\\' then
                escaped <- true
                current.Append c |> ignore
            elif c = '"' then
                quoted <- not quoted
                current.Append c |> ignore
            elif c = ',' && not quoted then
                parts.Add(current.ToString())
                current.Clear() |> ignore
            else
                current.Append c |> ignore

        parts.Add(current.ToString())
        parts |> Seq.map (fun p -> p.Trim ows) |> Seq.filter (fun p -> p <> "") |> List.ofSeq

    /// Directive names compare case-insensitively (RFC 9111 §5.2).
    let private directiveName (directive: string) =
        let i = directive.IndexOf '='
        (if i < 0 then directive else directive.Substring(0, i)).Trim(ows).ToLowerInvariant()

    /// The `Cache-Control` value of a response that carries an inserted persistence cookie (HAProxy
    /// `nocache`), from the backend's own `Cache-Control` field values (none, one, or several).
    /// It holds `private` exactly once, so no shared cache stores the response and hands one client's
    /// cookie to everyone (RFC 9111 §5.2.2.7). `public` is dropped: it would contradict `private`.
    /// A qualified `private="..."` becomes plain `private`: the qualified form lets shared caches store
    /// the response minus the named fields. Other directives keep their text and order.
    /// HAProxy (src/http_ana.c) notes that `no-cache="set-cookie"` is the precise form but some caches
    /// ignore it, "So we use 'private' instead"; we do the same and add no `no-cache`.
    /// Empty list elements and directives holding control characters are dropped (RFC 9110 §5.6.1).
    [<CompiledName("WithPrivate")>]
    let withPrivate (backendValues: string[]) : string =
        let directives =
            backendValues
            |> Seq.filter (String.IsNullOrEmpty >> not)
            |> Seq.collect splitList
            |> Seq.filter (hasControl >> not)
            |> List.ofSeq

        let isPrivate d = directiveName d = "private"

        let kept =
            directives
            |> List.filter (fun d -> directiveName d <> "public")
            |> List.fold
                (fun (acc, seen) d ->
                    if isPrivate d then (if seen then acc, seen else "private" :: acc, true)
                    else d :: acc, seen)
                ([], false)
            |> fun (acc, seen) -> List.rev (if seen then acc else "private" :: acc)

        String.concat ", " kept
