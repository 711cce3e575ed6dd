using Lb.Rules;

namespace Lb.Host.Forwarding;

/// <summary>What the transformer needs about one forwarded request: the plan and the persistence outcome.</summary>
public sealed class ForwardContext(ForwardPlan plan, string[] backendCookies, AppRuntime app)
{
    public ForwardPlan Plan { get; } = plan;

    /// <summary>The app's runtime state (of the config generation the request was routed by).</summary>
    public AppRuntime App { get; } = app;

    /// <summary>The Cookie header values for the backend: the persistence cookie removed (`indirect`).</summary>
    public string[] BackendCookies { get; } = backendCookies;

    /// <summary>The last selection's outcome (<see cref="Lb.Rules.Selection"/>): the first choice, then each retry's.</summary>
    public Selection Selection { get; set; } = Selection.NewNoServer(CookieOutcome.NoCookie);

    /// <summary>The server the current attempt goes to.</summary>
    public int ServerIndex { get; set; }

    /// <summary>Set when this client needs a (new) persistence cookie: first visit, forged cookie, redispatch.</summary>
    public bool InsertCookie { get; set; }

    /// <summary>The Set-Cookie line that pins this client to <see cref="ServerIndex"/>.</summary>
    public string PersistenceCookie(bool secure) => App.PersistenceCookie(ServerIndex, secure);
}
