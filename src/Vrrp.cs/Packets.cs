namespace Lb.Vrrp; public static class Placeholder { }
