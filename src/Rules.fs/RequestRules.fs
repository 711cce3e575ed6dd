namespace Lb.Rules

open System
open System.Net
open System.Text.RegularExpressions

/// A regular expression of a rule, compiled once at load with `RegexOptions.NonBacktracking`: matching time is
/// linear in the input, so no client-chosen path or header can make a rule backtrack for seconds (the ReDoS that
/// HAProxy's PCRE `-m reg` is open to). The price is lookarounds, backreferences and atomic groups, which
/// `RequestRules.pattern` refuses at load. Two patterns are equal when their sources are.
[<CustomEquality; NoComparison>]
type Pattern =
    private
        { source: string
          regex: Regex }

    member p.Source = p.source
    member p.IsMatch(text: string) = p.regex.IsMatch text

    override p.Equals(other: obj) =
        match other with
        | :? Pattern as q -> String.Equals(p.source, q.source, StringComparison.Ordinal)
        | _ -> false

    override p.GetHashCode() = StringComparer.Ordinal.GetHashCode p.source
    override p.ToString() = p.source

/// An IPv4 or IPv6 network, `10.0.0.0/8` or `2001:db8::/32`; a bare address is one host. Only
/// `RequestRules.cidr` builds one, so the host bits are always zero and `Text` is how config writes it.
type Cidr =
    private
        { network: byte[]
          prefix: int
          text: string }

    member c.Text = c.text
    override c.ToString() = c.text

/// What a header or cookie condition asks of the value.
[<RequireQualifiedAccess>]
type ValueTest =
    /// The header or cookie is there, whatever its value.
    | Present
    /// One of its values is exactly this (case-sensitive).
    | Equals of string
    /// One of its values matches.
    | Matches of Pattern

/// The `when` of a rule (HAProxy's `acl` criteria, as one typed tree).
[<RequireQualifiedAccess>]
type Condition =
    /// No `when`, or `when = {}`: every request.
    | Always
    /// `path_prefix`: the path starts with this text (HAProxy `path_beg`).
    | PathPrefix of string
    /// `path_segment`: one whole segment of the path is this (HAProxy `path_dir`).
    | PathSegment of string
    /// `path_regex`.
    | PathMatches of Pattern
    /// `host`: the Host header without its port, compared case-insensitively (RFC 9110 §4.2.3).
    | Host of string
    /// `method`: one of these (case-sensitive, RFC 9110 §9.1).
    | Method of string list
    /// `header = { name = ..., equals | regex = ... }`; names are case-insensitive (RFC 9110 §5.1).
    | Header of name: string * test: ValueTest
    /// `cookie = { name = ..., equals | regex = ... }`; names are case-sensitive (RFC 6265 §5.3 step 11 compares
    /// them exactly).
    | Cookie of name: string * test: ValueTest
    /// `source`: the client's address is in one of these networks (the TCP peer, not X-Forwarded-For).
    | Source of Cidr list
    /// `all = [...]`, or several keys in one `when` table.
    | All of Condition list
    /// `any = [...]`.
    | Any of Condition list
    /// `not = {...}`.
    | Not of Condition

/// A header change of a `then`.
[<RequireQualifiedAccess>]
type HeaderEdit =
    /// `set_*_header`: replaces every field of that name.
    | Set of name: string * value: string
    /// `add_*_header`: one more field line.
    | Add of name: string * value: string
    /// `remove_*_header`.
    | Remove of name: string

/// A `then` that lets the request through, changed.
type ForwardRule =
    { /// `route = "app2"`: to another app, whatever the path (global rules only); the backend sees the whole path.
      Route: string option
      /// `pin = ["app1_3"]`: only these servers of the app may take the request (none listed: any server).
      Pin: string list
      RequestHeaders: HeaderEdit list
      ResponseHeaders: HeaderEdit list }

/// The `then` of a rule. A deny or redirect has nothing else: a union, so "deny and set a header" cannot be said.
[<RequireQualifiedAccess>]
type RuleAction =
    /// `deny = 403`: lb answers with this status and its error page.
    | Deny of status: int
    /// `redirect = 302, location = "https://${host}/maintenance"`.
    | Redirect of status: int * location: string
    | Forward of ForwardRule

/// One rule: `when` → `then`. `Name` is where config wrote it, `rules[0]` or `apps.app1.rules[2]`.
type Rule =
    { Name: string
      When: Condition
      Then: RuleAction }

/// What rules read from a request.
type RuleRequest =
    { Method: string
      /// The Host header as received (`site:8443`).
      Host: string
      /// The path the rules see: the public normalised path (`/app1/admin`) for global rules, the path within
      /// the app (`/admin`) for an app's rules.
      Path: string
      /// The normalised public path, for `${path}` in redirect locations.
      PublicPath: string
      /// `?a=b` or "".
      Query: string
      /// Every request header field line as (name, value).
      Headers: (string * string) array
      /// The client's address (the TCP peer), IPv4-mapped IPv6 addresses read as IPv4.
      Client: IPAddress option }

/// Rules evaluated as a pure function: the first rule whose `when` holds decides; the ones after it are not read.
[<RequireQualifiedAccess>]
module RequestRules =

    // ---- Building blocks, each refusing what lb cannot match safely ---------------------------------

    let private tryParseAddress (text: string) : IPAddress option =
        match IPAddress.TryParse text with
        | true, ip -> Option.ofObj ip
        | _ -> None

    /// Compiles a regex. Rejects, with the reason, syntax errors and what NonBacktracking cannot run (lookarounds,
    /// backreferences, atomic groups, RegexOptions the engine refuses), and patterns over 1000 characters.
    [<CompiledName("Pattern")>]
    let pattern (source: string) : Result<Pattern, string> =
        if source.Length > 1000 then
            Error "longer than 1000 characters"
        else
            try
                Ok
                    { source = source
                      regex = Regex(source, RegexOptions.NonBacktracking ||| RegexOptions.CultureInvariant) }
            with
            | :? NotSupportedException as e -> Error $"not supported by lb's linear-time matcher: {e.Message}"
            | :? ArgumentException as e -> Error e.Message

    /// Reads `10.0.0.0/8`, `2001:db8::/32`, or a bare address (one host). Rejects anything else, a prefix
    /// longer than the address, and host bits set below the prefix (`10.1.0.0/8` is a typo for `10.0.0.0/8` or
    /// for `/16`, and lb will not guess which).
    [<CompiledName("Cidr")>]
    let cidr (text: string) : Result<Cidr, string> =
        let address, prefixText =
            match text.IndexOf '/' with
            | -1 -> text, None
            | i -> text.Substring(0, i), Some(text.Substring(i + 1))
        match tryParseAddress address with
        | Some ip when address.Trim() = address && not (address.Contains '%') ->
            let bytes = ip.GetAddressBytes()
            let width = bytes.Length * 8
            let prefix =
                match prefixText with
                | None -> Ok width
                | Some p when p.Length > 0 && p.Length <= 3 && p |> Seq.forall Char.IsAsciiDigit && int p <= width -> Ok(int p)
                | Some p -> Error $"'/{p}' is not a prefix length from 0 to {width}"
            match prefix with
            | Error e -> Error e
            | Ok prefix ->
                let masked =
                    bytes
                    |> Array.mapi (fun i b ->
                        let keep = max 0 (min 8 (prefix - 8 * i))
                        b &&& byte (0xFF <<< (8 - keep)))
                if masked <> bytes then
                    Error $"host bits are set below /{prefix}: the network is {IPAddress(masked)}/{prefix}"
                else
                    Ok { network = bytes; prefix = prefix; text = text }
        | _ -> Error $"'{address}' is not an IP address"

    /// Whether an address is in the network; IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) count as IPv4.
    let contains (network: Cidr) (address: IPAddress) =
        let address = if address.IsIPv4MappedToIPv6 then address.MapToIPv4() else address
        let bytes = address.GetAddressBytes()
        bytes.Length = network.network.Length
        && Seq.forall
            (fun i ->
                let keep = max 0 (min 8 (network.prefix - 8 * i))
                let mask = byte (0xFF <<< (8 - keep))
                bytes[i] &&& mask = network.network[i])
            (seq { 0 .. bytes.Length - 1 })

    /// The variables of a redirect `location`.
    let locationVariables = [ "host"; "path"; "query" ]

    /// Checks a redirect location template: an absolute path or an http(s) URL, `${host}`, `${path}` and `${query}`
    /// only, no control character or space (the result goes into a Location header). Returns every problem.
    let checkLocation (template: string) : string list =
        [ if not (template.StartsWith "/" || template.StartsWith "https://" || template.StartsWith "http://"
                  || template.StartsWith "${") then
              "a location starts with '/', 'https://' or 'http://'"
          if template |> Seq.exists (fun c -> Char.IsControl c || c = ' ') then
              "a location holds no space or control character"
          for m in Regex.Matches(template, @"\$\{([^}]*)\}") do
              if not (List.contains m.Groups[1].Value locationVariables) then
                  $"unknown variable ${{{m.Groups[1].Value}}}: use ${{host}}, ${{path}} or ${{query}}"
          if Regex.Replace(template, @"\$\{[^}]*\}", "").Contains "${" then
              "an unclosed ${" ]

    /// The location of a redirect: `${host}` is the Host header as received (already checked as a host by
    /// routing), `${path}` the normalised public path, `${query}` the query with its `?` (or nothing).
    [<CompiledName("ExpandLocation")>]
    let expandLocation (template: string, request: RuleRequest) : string =
        template.Replace("${host}", request.Host).Replace("${path}", request.PublicPath).Replace("${query}", request.Query)

    // ---- Evaluation -----------------------------------------------------------------------------------

    /// `site:8443` → `site`, `[::1]:8443` → `[::1]`: the host of a Host header (RFC 9110 §7.2), for host
    /// conditions here and the https redirect in Routing.
    let hostWithoutPort (host: string) =
        if host.StartsWith "[" then
            match host.IndexOf ']' with
            | -1 -> host
            | i -> host.Substring(0, i + 1)
        else
            match host.LastIndexOf ':' with
            | -1 -> host
            | i -> host.Substring(0, i)

    let private headerValues (request: RuleRequest) (name: string) =
        request.Headers
        |> Array.filter (fun (n, _) -> String.Equals(n, name, StringComparison.OrdinalIgnoreCase))
        |> Array.map snd

    let private cookieValues (request: RuleRequest) (name: string) =
        headerValues request "Cookie"
        |> Cookies.parseHeaders
        |> Array.filter (fun p -> p.Name = name)
        |> Array.map (fun p -> p.Value)

    let private test (values: string array) (t: ValueTest) =
        match t with
        | ValueTest.Present -> values.Length > 0
        | ValueTest.Equals v -> values |> Array.exists (fun x -> x.Trim [| ' '; '\t' |] = v)
        | ValueTest.Matches p -> values |> Array.exists p.IsMatch

    let private segments (path: string) = path.Split('/', StringSplitOptions.RemoveEmptyEntries)

    /// Whether a condition holds for a request.
    [<CompiledName("Matches")>]
    let rec matches (condition: Condition) (request: RuleRequest) : bool =
        match condition with
        | Condition.Always -> true
        | Condition.PathPrefix p -> request.Path.StartsWith(p, StringComparison.Ordinal)
        | Condition.PathSegment s -> segments request.Path |> Array.contains s
        | Condition.PathMatches p -> p.IsMatch request.Path
        | Condition.Host h -> String.Equals(hostWithoutPort request.Host, h, StringComparison.OrdinalIgnoreCase)
        | Condition.Method ms -> List.contains request.Method ms
        | Condition.Header(name, t) -> test (headerValues request name) t
        | Condition.Cookie(name, t) -> test (cookieValues request name) t
        | Condition.Source networks ->
            match request.Client with
            | Some address -> networks |> List.exists (fun n -> contains n address)
            | None -> false
        | Condition.All cs -> cs |> List.forall (fun c -> matches c request)
        | Condition.Any cs -> cs |> List.exists (fun c -> matches c request)
        | Condition.Not c -> not (matches c request)

    /// Text from a request shown in an explanation: control characters dropped, so it stays one line.
    let private shown (text: string) = String(text |> Seq.filter (fun c -> not (Char.IsControl c)) |> Array.ofSeq)

    let private quoted (values: string array) =
        match values with
        | [||] -> "absent"
        | vs -> String.Join(", ", vs |> Array.map (fun v -> "\"" + shown v + "\""))

    let private testText (t: ValueTest) =
        match t with
        | ValueTest.Present -> "present"
        | ValueTest.Equals v -> $"= \"{v}\""
        | ValueTest.Matches p -> $"~ /{p.Source}/"

    /// A condition as config says it, for `lb explain`.
    let rec describe (condition: Condition) : string =
        match condition with
        | Condition.Always -> "always"
        | Condition.PathPrefix p -> $"path_prefix \"{p}\""
        | Condition.PathSegment s -> $"path_segment \"{s}\""
        | Condition.PathMatches p -> $"path_regex /{p.Source}/"
        | Condition.Host h -> $"host \"{h}\""
        | Condition.Method ms -> "method " + String.Join("|", ms)
        | Condition.Header(n, t) -> $"header {n} {testText t}"
        | Condition.Cookie(n, t) -> $"cookie {n} {testText t}"
        | Condition.Source ns -> "source in " + String.Join(", ", ns |> List.map string)
        | Condition.All cs -> "all(" + String.Join("; ", cs |> List.map describe) + ")"
        | Condition.Any cs -> "any(" + String.Join("; ", cs |> List.map describe) + ")"
        | Condition.Not c -> "not(" + describe c + ")"

    /// Whether a condition holds, and why in words: the part that decided it.
    let rec explain (condition: Condition) (request: RuleRequest) : bool * string =
        let result = matches condition request
        let verb = if result then "is" else "is not"
        let why =
            match condition with
            | Condition.Always -> "no condition"
            | Condition.PathPrefix p ->
                if result then $"path {shown request.Path} starts with {p}" else $"path {shown request.Path} does not start with {p}"
            | Condition.PathSegment s ->
                if result then $"path {shown request.Path} has the segment {s}" else $"path {shown request.Path} has no segment {s}"
            | Condition.PathMatches p ->
                if result then $"path {shown request.Path} matches /{p.Source}/" else $"path {shown request.Path} does not match /{p.Source}/"
            | Condition.Host h -> $"host {shown (hostWithoutPort request.Host)} {verb} {h}"
            | Condition.Method ms -> $"method {shown request.Method} {verb} " + String.Join("|", ms)
            | Condition.Header(n, t) -> $"header {n} ({quoted (headerValues request n)}) {verb} {testText t}"
            | Condition.Cookie(n, t) -> $"cookie {n} ({quoted (cookieValues request n)}) {verb} {testText t}"
            | Condition.Source ns ->
                let client = request.Client |> Option.map string |> Option.defaultValue "unknown"
                $"client {client} {verb} in " + String.Join(", ", ns |> List.map string)
            | Condition.All cs ->
                match cs |> List.tryFind (fun c -> not (matches c request)) with
                | Some failing -> snd (explain failing request)
                | None -> String.Join(" and ", cs |> List.map (fun c -> snd (explain c request)))
            | Condition.Any cs ->
                match cs |> List.tryFind (fun c -> matches c request) with
                | Some holding -> snd (explain holding request)
                | None -> "none of: " + String.Join("; ", cs |> List.map (fun c -> snd (explain c request)))
            | Condition.Not c -> "not: " + snd (explain c request)
        result, why

    /// The first rule whose `when` holds: it decides, and no rule after it is read.
    [<CompiledName("FirstMatch")>]
    let firstMatch (rules: Rule seq) (request: RuleRequest) : Rule option =
        rules |> Seq.tryFind (fun rule -> matches rule.When request)

    /// Every rule read for a request, in order, up to and including the one that matched: (rule, matched, why).
    let trace (rules: Rule seq) (request: RuleRequest) : (Rule * bool * string) list =
        let rec go (rest: Rule list) =
            match rest with
            | [] -> []
            | rule :: more ->
                let matched, why = explain rule.When request
                if matched then [ rule, true, why ] else (rule, false, why) :: go more
        go (List.ofSeq rules)

    /// A rule with no condition: every rule after it in the same list is unreachable.
    let isUnconditional (rule: Rule) = rule.When = Condition.Always

    /// A header edit as config says it.
    let describeEdit (direction: string) (edit: HeaderEdit) =
        match edit with
        | HeaderEdit.Set(n, v) -> $"set_{direction}_header {n}: {v}"
        | HeaderEdit.Add(n, v) -> $"add_{direction}_header {n}: {v}"
        | HeaderEdit.Remove n -> $"remove_{direction}_header {n}"

    /// A `then` as config says it, for `lb explain`.
    let describeAction (action: RuleAction) =
        match action with
        | RuleAction.Deny status -> $"deny {status}"
        | RuleAction.Redirect(status, location) -> $"redirect {status} to {location}"
        | RuleAction.Forward f ->
            let parts =
                [ yield! f.Route |> Option.map (fun a -> $"route to app {a}") |> Option.toList
                  if not f.Pin.IsEmpty then "pin to " + String.Join(", ", f.Pin)
                  yield! f.RequestHeaders |> List.map (describeEdit "request")
                  yield! f.ResponseHeaders |> List.map (describeEdit "response") ]
            if parts.IsEmpty then "forward" else "forward: " + String.Join("; ", parts)

    /// The client address of a request as rules read it: None when the shell has none or it is not an address.
    let clientAddress (text: string) : IPAddress option =
        match tryParseAddress text with
        | Some ip when ip.IsIPv4MappedToIPv6 -> Some(ip.MapToIPv4())
        | other -> other

    /// A header field name is a token (RFC 9110 §5.1, `Token.isToken`).
    let isHeaderName (name: string) = Token.isToken name

    /// A header value lb may send: visible ASCII, spaces and tabs inside (RFC 9110 §5.5), no CR, LF or NUL.
    let isHeaderValue (value: string) =
        value.Trim [| ' '; '\t' |] = value && value |> Seq.forall (fun c -> (c >= ' ' && c < '\127') || c = '\t')

    /// Headers lb manages itself, which rules may not change: the framing and connection headers (RFC 9112 §6,
    /// RFC 9110 §7.6.1), Host, and the X-Forwarded-* set lb writes.
    let managedHeaders =
        [ "host"; "content-length"; "transfer-encoding"; "connection"; "keep-alive"; "upgrade"; "te"; "trailer"
          "proxy-connection"; "x-forwarded-for"; "x-forwarded-proto"; "x-forwarded-host"; "x-forwarded-prefix" ]
