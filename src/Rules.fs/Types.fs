namespace Lb.Rules

open System

/// A host and port as written in config: an IPv4/IPv6 literal or a host name, and a TCP port.
type Endpoint =
    { Host: string
      Port: int }

    /// `host:port`, with IPv6 literals in brackets (RFC 3986 §3.2.2), as used in URLs and Host headers.
    override this.ToString() =
        if this.Host.Contains ':' then $"[{this.Host}]:{this.Port}" else $"{this.Host}:{this.Port}"

/// What the plain-HTTP listener does with a request.
[<RequireQualifiedAccess>]
type PlainHttpMode =
    /// Apache's `RewriteRule ^(.*)$ https://%{HTTP_HOST}$1 [R,L]`: every request is redirected to https.
    | RedirectToHttps
    /// Proxy plain HTTP like the https listener, for setups where TLS ends in front of lb.
    | Proxy

type NodeConfig = { Name: string }

type ListenConfig =
    { Http: Endpoint option
      Https: Endpoint option
      PlainHttp: PlainHttpMode
      /// Status of the http→https and `/app`→`/app/` redirects (Apache's `[R]` is 302).
      RedirectStatus: int }

/// PEM files, paths already resolved against the config file's folder.
type TlsConfig =
    { Cert: string
      Key: string
      Chain: string option }

type DefaultsConfig =
    { Retries: int
      Redispatch: bool
      TimeoutConnect: TimeSpan
      TimeoutClient: TimeSpan
      TimeoutServer: TimeSpan }

type ServerConfig =
    { Name: string
      Address: Endpoint
      Weight: int }

type AppConfig =
    { Name: string
      Servers: ServerConfig array }

    /// The public path prefix of the app: `/app1`.
    member this.Prefix = "/" + this.Name

/// The whole validated configuration. Built only by `Config.parse`, so every value here passed validation.
type LbConfig =
    { Node: NodeConfig
      Listen: ListenConfig
      Tls: TlsConfig option
      Defaults: DefaultsConfig
      Apps: AppConfig array }

/// A configuration error with its place in the file and a hint on how to fix it.
type ConfigError =
    { Keyword: string
      Line: int
      Column: int
      Message: string
      Hint: string }

    override this.ToString() =
        let hint = if String.IsNullOrEmpty this.Hint then "" else $" (hint: {this.Hint})"
        $"{this.Line}:{this.Column}: {this.Keyword}: {this.Message}{hint}"
