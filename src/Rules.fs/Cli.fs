namespace Lb.Rules

open Argu

// A new union or field type here needs its lines in src/Host.cs/NativeAot.rd.xml, for the NativeAOT build.

type ConfigArgs =
    | [<AltCommandLine("-c"); Mandatory; Unique>] Config of file: string

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Config _ -> "the lb config file (TOML)"

type CheckArgs =
    | [<AltCommandLine("-c"); Mandatory; Unique>] Config of file: string
    | Peer of file: string

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Config _ -> "the lb config file (TOML)"
            | Peer _ -> "the config of another node of the VRRP pair (repeatable): adds it to the failover table"

type ExplainArgs =
    | [<AltCommandLine("-c"); Mandatory; Unique>] Config of file: string
    | [<MainCommand; Mandatory; Unique>] Url of url: string
    | [<Unique>] Cookie of header: string
    | Header of line: string
    | [<Unique>] From of address: string

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Config _ -> "the lb config file (TOML)"
            | Url _ -> "the URL to explain, like https://site/app1/x"
            | Cookie _ -> "the request's Cookie header, like \"SRVID=app1_1; a=b\", to see the persistence decision"
            | Header _ -> "a request header, like \"X-Beta: 1\" (repeatable), for rules that read headers"
            | From _ -> $"the client's address, for rules on the source (default {Explain.exampleClient})"

type DemoArgs =
    | [<Unique>] Https_Port of port: int
    | [<Unique>] Http_Port of port: int

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Https_Port _ -> "https port of the demo (default 8443)"
            | Http_Port _ -> "http port of the demo (default 8080)"

type HashPasswordArgs =
    | [<Unique>] Iterations of count: int

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Iterations _ -> $"PBKDF2 iterations (default {Password.DefaultIterations}, at least {Password.MinIterations})"

type ConfigCommandArgs =
    | [<CliPrefix(CliPrefix.None)>] Show of ParseResults<ConfigArgs>

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Show _ -> "print the effective config as TOML: every default filled in and marked, paths resolved"

type LbArgs =
    | [<CliPrefix(CliPrefix.None)>] Run of ParseResults<ConfigArgs>
    | [<CliPrefix(CliPrefix.None)>] Check of ParseResults<CheckArgs>
    | [<CliPrefix(CliPrefix.None)>] Explain of ParseResults<ExplainArgs>
    | [<CliPrefix(CliPrefix.None)>] Config of ParseResults<ConfigCommandArgs>
    | [<CliPrefix(CliPrefix.None)>] Demo of ParseResults<DemoArgs>
    | [<CliPrefix(CliPrefix.None)>] Hash_Password of ParseResults<HashPasswordArgs>
    | Version

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Run _ -> "run lb on a config file"
            | Check _ -> "validate a config file: every error with line:column, or a one-line summary"
            | Explain _ -> "print the decision lb makes for a URL"
            | Config _ -> "config file tools: `lb config show -c FILE`"
            | Demo _ -> "run lb on an embedded demo: 3 apps x 3 built-in backends, self-signed certificate"
            | Hash_Password _ -> "read a password on stdin and print the [stats] password_hash line for it"
            | Version -> "print the version"

/// The command the user asked for, as the C# shell consumes it.
type Command =
    | RunCommand of configFile: string
    | CheckCommand of configFile: string * peers: string array
    /// `cookie` is the `--cookie` header value, "" when absent.
    | ExplainCommand of configFile: string * url: string * cookie: string * headers: string array * from: string
    /// `lb config show -c FILE`: print the effective config (`TomlRender.render`).
    | ConfigShowCommand of configFile: string
    | DemoCommand of httpsPort: int * httpPort: int
    /// `lb hash-password`: the shell reads the password (no echo on a terminal) and hashes it.
    | HashPasswordCommand of iterations: int
    | VersionCommand
    /// `--help` or a parse error: the text to print and the exit code.
    | UsageCommand of text: string * exitCode: int

[<RequireQualifiedAccess>]
module Cli =
    let private parser = lazy (ArgumentParser.Create<LbArgs>(programName = "lb"))

    let private toCommand (results: ParseResults<LbArgs>) =
        match results.GetSubCommand() with
        | Run r -> RunCommand(r.GetResult ConfigArgs.Config)
        | Check c -> CheckCommand(c.GetResult CheckArgs.Config, c.GetResults CheckArgs.Peer |> Array.ofList)
        | Explain e ->
            ExplainCommand(
                e.GetResult ExplainArgs.Config,
                e.GetResult ExplainArgs.Url,
                e.GetResult(ExplainArgs.Cookie, defaultValue = ""),
                e.GetResults ExplainArgs.Header |> Array.ofList,
                e.GetResult(ExplainArgs.From, defaultValue = "")
            )
        | LbArgs.Config c ->
            match c.TryGetSubCommand() with
            | Some(Show s) -> ConfigShowCommand(s.GetResult ConfigArgs.Config)
            | None -> UsageCommand(c.Parser.PrintUsage(), 2)
        | Demo d -> DemoCommand(d.GetResult(Https_Port, defaultValue = 8443), d.GetResult(Http_Port, defaultValue = 8080))
        | Hash_Password h ->
            let iterations = h.GetResult(Iterations, defaultValue = Password.DefaultIterations)
            if iterations < Password.MinIterations || iterations > Password.MaxIterations then
                UsageCommand($"--iterations must be from {Password.MinIterations} to {Password.MaxIterations}", 2)
            else
                HashPasswordCommand iterations
        | Version -> VersionCommand

    /// Parses the command line; never throws.
    [<CompiledName("Parse")>]
    let parse (argv: string array) : Command =
        try
            let results = parser.Value.ParseCommandLine(argv, raiseOnUsage = true)
            if results.GetAllResults().IsEmpty then UsageCommand(parser.Value.PrintUsage(), 2)
            else toCommand results
        with
        | :? ArguParseException as e when e.ErrorCode = ErrorCode.HelpText -> UsageCommand(e.Message, 0)
        | :? ArguParseException as e -> UsageCommand(e.Message, 2)
