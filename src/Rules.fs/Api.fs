namespace Lb.Rules

open System

/// The outcome of loading a config, shaped for C#: either `Config` is set or `Errors` is non-empty.
type ConfigLoad(config: LbConfig option, errors: ConfigError array) =
    member _.IsValid = config.IsSome
    member _.Config = match config with Some c -> c | None -> Unchecked.defaultof<_>
    member _.Errors = errors

/// The C#-facing facade of the rules: tupled, PascalCase, arrays (STYLE rule 5).
[<AbstractClass; Sealed>]
type Rules =
    /// Loads config text; `baseDir` resolves relative paths, `fileExists` checks the PEM files.
    /// `checkTls` returns (key, message) pairs for PEM files that exist but cannot be used.
    static member LoadConfig(text: string, baseDir: string, fileExists: Func<string, bool>, checkTls: Func<TlsConfig, struct (string * string) array>) =
        Rules.LoadConfig(text, baseDir, fileExists, checkTls, Func<string, string>(fun _ -> raise (IO.IOException "files are not read here")))

    /// As above; `readText` reads a file the config names (`[stats] password_file`) and throws IOException or
    /// UnauthorizedAccessException when it cannot.
    static member LoadConfig
        (text: string, baseDir: string, fileExists: Func<string, bool>, checkTls: Func<TlsConfig, struct (string * string) array>, readText: Func<string, string>)
        =
        let io =
            { FileExists = fileExists.Invoke
              CheckTls = (fun tls -> checkTls.Invoke tls |> Array.map (fun struct (k, m) -> k, m) |> List.ofArray)
              ReadText =
                fun path ->
                    try
                        Ok(readText.Invoke path)
                    with
                    | :? IO.IOException as e -> Error e.Message
                    | :? UnauthorizedAccessException as e -> Error e.Message }
        match Config.parseTextWith io text baseDir with
        | Ok config -> ConfigLoad(Some config, [||])
        | Error errors -> ConfigLoad(None, Array.ofList errors)

    static member Summary(config: LbConfig) = Config.summary config

    static member Compile(config: LbConfig) = Snapshot config

    static member RewriteLocation(context: ResponseContext, value: string) = HeaderRewrite.rewriteLocation context value

    static member RewriteSetCookie(prefix: string, value: string) = HeaderRewrite.rewriteSetCookie prefix value
