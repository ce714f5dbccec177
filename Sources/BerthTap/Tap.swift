public enum TapPlaceholder {}
