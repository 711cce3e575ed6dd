namespace Lb.Rules

open System

/// Where a response is going back to: what the client asked for and which servers the app has.
type ResponseContext =
    { /// `/app1`
      Prefix: string
      /// `https` or `http`: the scheme the client used.
      PublicScheme: string
      /// The client's Host header (`site` or `site:8443`).
      PublicHost: string
      /// `host:port` of every server of the app, lower-case: a Location pointing at any of them is ours.
      ServerAuthorities: string array }

/// Header rewrites in both directions. Every output is free of CR, LF and NUL (no response splitting),
/// whatever the backend sent.
[<RequireQualifiedAccess>]
module HeaderRewrite =
    /// Drops CR, LF and NUL: a rewrite must never let a header value start a new header line.
    let sanitize (value: string) =
        if value.IndexOfAny [| '\r'; '\n'; '\000' |] < 0 then value
        else value.Replace("\r", "").Replace("\n", "").Replace("\000", "")

    /// `X-Forwarded-For` with the client address appended (RFC 7239 §5.2 order: client first, proxies after).
    let forwardedFor (existing: string option) (clientAddress: string) =
        match existing with
        | Some e when not (String.IsNullOrWhiteSpace e) -> sanitize e + ", " + sanitize clientAddress
        | _ -> sanitize clientAddress

    /// The request headers lb sets on every forwarded request (Apache mod_proxy's set, plus the prefix).
    let forwardedHeaders (existingXff: string option) clientAddress isHttps (host: string) (prefix: string) =
        [| "X-Forwarded-For", forwardedFor existingXff clientAddress
           "X-Forwarded-Proto", (if isHttps then "https" else "http")
           "X-Forwarded-Host", sanitize host
           "X-Forwarded-Prefix", prefix |]

    /// `http://h:80/x` and `http://h/x` name the same server (RFC 9110 §4.2.1 default ports).
    let private authorityVariants (scheme: string) (authority: string) =
        let lower = authority.ToLowerInvariant()
        let defaultPort = if scheme = "https" then ":443" else ":80"
        if lower.EndsWith defaultPort then [ lower; lower.Substring(0, lower.Length - defaultPort.Length) ]
        else [ lower; lower + defaultPort ]

    let private isOurs (context: ResponseContext) scheme (authority: string) =
        let variants = authorityVariants scheme authority
        variants |> List.exists (fun a -> Array.contains a context.ServerAuthorities)
        || variants |> List.exists (fun a -> String.Equals(a, context.PublicHost, StringComparison.OrdinalIgnoreCase))

    /// Splits `scheme://authority/rest` (or `//authority/rest`) into its parts; None for a relative reference.
    let private splitAbsolute (value: string) : (string * string * string) option =
        let afterScheme =
            if value.StartsWith "//" then Some("", 2)
            else
                match value.IndexOf "://" with
                | i when i > 0 && Char.IsAsciiLetter value[0] && value.Substring(0, i) |> Seq.forall (fun c -> Char.IsAsciiLetterOrDigit c || c = '+' || c = '-' || c = '.') ->
                    Some(value.Substring(0, i).ToLowerInvariant(), i + 3)
                | _ -> None
        afterScheme
        |> Option.map (fun (scheme, start) ->
            let stop = value.IndexOfAny([| '/'; '?'; '#' |], start)
            let stop = if stop < 0 then value.Length else stop
            scheme, value.Substring(start, stop - start), value.Substring stop)

    /// The rest of a URL after its authority, under the app prefix: `/x` → `/app1/x`, `` → `/app1/`.
    let private underPrefix (prefix: string) (rest: string) =
        if rest.StartsWith "/" then prefix + rest else prefix + "/" + rest

    /// `Location` / `Content-Location` from a backend: a URL pointing at one of the app's servers or at the
    /// public host gets the public scheme, host and prefix (`http://10.0.0.11:8080/x` → `https://site/app1/x`);
    /// an absolute path gets the prefix (`/x` → `/app1/x`); anything else (other hosts, relative paths) is kept.
    let rewriteLocation (context: ResponseContext) (value: string) =
        let value = sanitize value
        match splitAbsolute value with
        | Some(scheme, authority, rest) when (scheme = "" || scheme = "http" || scheme = "https") && isOurs context (if scheme = "" then context.PublicScheme else scheme) authority ->
            context.PublicScheme + "://" + sanitize context.PublicHost + underPrefix context.Prefix rest
        | Some _ -> value
        | None when value.StartsWith "/" -> context.Prefix + value
        | None -> value

    /// `Set-Cookie: a=b; Path=/x` → `Path=/app1/x` (the seed's `rspirep ^(Set-Cookie:.*\ path=)`), for the
    /// attribute in any case and with any spacing (RFC 6265 §5.2). A cookie without a Path is left as is: its
    /// default path is already under the app's prefix.
    let rewriteSetCookie (prefix: string) (value: string) =
        let value = sanitize value
        let parts = value.Split ';'
        let rewritten =
            parts
            |> Array.mapi (fun i part ->
                let eq = part.IndexOf '='
                if i > 0 && eq > 0 && part.Substring(0, eq).Trim().Equals("path", StringComparison.OrdinalIgnoreCase) then
                    let pathValue = part.Substring(eq + 1)
                    let trimmed = pathValue.TrimStart()
                    if trimmed.StartsWith "/" then
                        part.Substring(0, eq + 1) + pathValue.Substring(0, pathValue.Length - trimmed.Length) + prefix + trimmed
                    else part
                else part)
        String.Join(";", rewritten)
