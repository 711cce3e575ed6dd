namespace Lb.Rules

/// Where a server's runtime state (health, admin state, counters, active requests) comes from after a reload.
[<RequireQualifiedAccess>]
type ServerOrigin =
    /// The same server, at this index of the same app in the running config: its state carries over.
    | Carried of oldIndex: int
    /// A server the running config does not have (or whose address changed): it starts fresh.
    | Fresh

/// One app of the new config: which app of the running config it continues, and where each server's state comes from.
type AppReload =
    { Name: string
      /// The app's index in the running config; None for an added app.
      OldIndex: int option
      /// Index-aligned with the new app's `Servers`.
      Servers: ServerOrigin array }

/// What applying a new config to a running lb means. `Refused` non-empty: the reload is refused as a whole.
type ReloadPlan =
    { /// Index-aligned with the new config's `Apps`.
      Apps: AppReload array
      /// Changes that cannot be applied while running (listeners, VRRP, ...), each with what it needs.
      Refused: string array
      Added: string array
      Removed: string array
      /// Apps in both configs whose settings or servers differ.
      Changed: string array }

    /// Whether the running lb can take the new config as a whole.
    member p.CanApply = p.Refused.Length = 0

/// Reload policy (HAProxy's `server-state-file` carry-over, decided once per reload): which runtime state a
/// server keeps, and which changes need a restart because what they configure was built at start.
[<RequireQualifiedAccess>]
module Reload =

    /// A server is "the same" when its app, name and address are: a server moved to another address is
    /// another backend, whose health and drain say nothing about the new one.
    let private sameServer (old: ServerConfig) (next: ServerConfig) =
        old.Name = next.Name && old.Address = next.Address

    let private originOf (oldApp: AppConfig option) (server: ServerConfig) =
        match oldApp |> Option.bind (fun a -> a.Servers |> Array.tryFindIndex (fun s -> sameServer s server)) with
        | Some i -> ServerOrigin.Carried i
        | None -> ServerOrigin.Fresh

    let private appPlan (old: LbConfig) (app: AppConfig) =
        let oldIndex = old.Apps |> Array.tryFindIndex (fun a -> a.Name = app.Name)
        let oldApp = oldIndex |> Option.map (fun i -> old.Apps[i])
        { Name = app.Name
          OldIndex = oldIndex
          Servers = app.Servers |> Array.map (originOf oldApp) }

    /// `what changed: why it needs a restart`, when `pick` differs between the configs.
    let private unless (old: LbConfig) (next: LbConfig) (pick: LbConfig -> 'T) (message: string) =
        if pick old = pick next then None else Some message

    /// The changes a running lb cannot take: what each configures was built once at start (bound sockets,
    /// Kestrel limits, the stats listener, the VRRP router, the access log file, the cache stores, error pages).
    let refusals (old: LbConfig) (next: LbConfig) : string list =
        let restart = "restart lb to apply it"
        [ unless old next (fun c -> c.Listen.Http) $"[listen] http changed: the listener stays bound; {restart}"
          unless old next (fun c -> c.Listen.Https) $"[listen] https changed: the listener stays bound; {restart}"
          unless old next (fun c -> c.Tls.IsSome) $"[tls] added or removed: the https listener is set up at start; {restart}"
          unless old next (fun c -> c.Node.Name) $"[node] name changed: VRRP and stats name the node at start; {restart}"
          unless old next (fun c -> c.Defaults.TimeoutClient) $"[defaults] timeout_client changed: the listeners' limits are set at start; {restart}"
          unless old next (fun c -> c.Defaults.MaxRequestHeaders) $"[defaults] max_request_headers changed: the listeners' limits are set at start; {restart}"
          unless old next (fun c -> c.Defaults.TimeoutShutdown) $"[defaults] timeout_shutdown changed: the host's shutdown timeout is set at start; {restart}"
          unless old next (fun c -> c.Stats) $"[stats] changed: the stats listener is set up at start; {restart}"
          unless old next (fun c -> c.Log) $"[log] changed: the access log is opened at start; {restart}"
          unless old next (fun c -> c.Vrrp) $"[vrrp] changed: the VRRP router is set up at start; {restart}"
          unless old next (fun c -> c.Cache) $"[cache] changed: the cache stores are set up at start; {restart}"
          unless old next (fun c -> c.Apps |> Array.exists (fun a -> a.Cache)) $"cache = true on no app before and some app now (or back): the cache is set up at start; {restart}"
          unless old next (fun c -> c.ErrorPages) $"[errors] changed: error pages are read at start; {restart}" ]
        |> List.choose id

    /// The plan for replacing the running config `old` with `next`. Total: every app and server of `next` gets
    /// an origin; a server is carried over only from the same app, name and address, never from another.
    [<CompiledName("Plan")>]
    let plan (old: LbConfig, next: LbConfig) : ReloadPlan =
        let names (c: LbConfig) = c.Apps |> Array.map (fun a -> a.Name)
        let kept = names next |> Array.filter (fun n -> Array.contains n (names old))
        let changed =
            kept
            |> Array.filter (fun n ->
                let find (c: LbConfig) = c.Apps |> Array.find (fun a -> a.Name = n)
                find old <> find next)
        { Apps = next.Apps |> Array.map (appPlan old)
          Refused = refusals old next |> Array.ofList
          Added = names next |> Array.filter (fun n -> not (Array.contains n (names old)))
          Removed = names old |> Array.filter (fun n -> not (Array.contains n (names next)))
          Changed = changed }

    /// One line for the log: `apps added: a; removed: b; changed: c`, or that no app changed.
    [<CompiledName("Summary")>]
    let summary (plan: ReloadPlan) : string =
        let part label (names: string array) =
            if names.Length = 0 then None else Some $"""{label}: {String.concat ", " names}"""
        match List.choose id [ part "apps added" plan.Added; part "removed" plan.Removed; part "changed" plan.Changed ] with
        | [] -> "no app changed"
        | parts -> String.concat "; " parts

    /// The health state a carried-over server starts the new config with: its old state under the new
    /// thresholds; up (as at start) when the app no longer checks health, as nothing would ever bring it up.
    [<CompiledName("CarriedHealth")>]
    let carriedHealth (state: HealthState, health: HealthCheckConfig) : HealthState =
        if health.Enabled then Health.rethreshold (state, health.Thresholds)
        else Health.initial (health.Thresholds, true)
