namespace Lb.Rules

open ConfigReading

/// `[tls]`: the PEM files of the https listener.
[<RequireQualifiedAccess>]
module TlsSection =
    let private pemFile errors (section: Section) key baseDir (fileExists: string -> bool) required =
        match optString errors section key with
        | Some(path, at) ->
            let full = resolve baseDir path
            if not (fileExists full) then
                addError errors (keyword section key) at $"file not found: {full}" "paths are relative to the config file"
            Some full
        | None ->
            if required then
                addError errors (keyword section key) section.Table.At "missing" $"add {key} = \"FILE.pem\" under [tls]"
            None

    /// `[tls] cert`, `key`, `chain`: PEM files, as Apache's SSLCertificateFile/KeyFile/ChainFile. Beyond
    /// existence, `checkTls` (injected: it reads the files) says whether they hold a usable certificate and key,
    /// so `lb check` refuses what `lb run` could not load.
    let parse (root: Section) baseDir (io: ConfigIo) (listen: ListenConfig) : TlsConfig option * ConfigError list =
        ownErrors <| fun errors ->
        match optTable errors root Keywords.Tls.Table with
        | Some tls ->
            rejectUnknownKeys errors tls Keywords.Tls.names
            let before = errors.Count
            let cert = pemFile errors tls Keywords.Tls.cert.Name baseDir io.FileExists true
            let key = pemFile errors tls Keywords.Tls.key.Name baseDir io.FileExists true
            let chain = pemFile errors tls Keywords.Tls.chain.Name baseDir io.FileExists false
            match cert, key with
            | Some c, Some k ->
                let config = { Cert = c; Key = k; Chain = chain }
                if errors.Count = before then
                    for name, message in io.CheckTls config do
                        let at = tryGet tls name |> Option.map (fun (_, p, _) -> p) |> Option.defaultValue tls.Table.At
                        addError errors (keyword tls name) at message "give PEM files: a certificate, its private key, and CA certificates in the chain"
                Some config
            | _ -> None
        | None ->
            if listen.Https.IsSome then
                addError errors Keywords.Tls.Table root.Table.At "an https listener needs a certificate" "add a [tls] section with cert and key"
            None
