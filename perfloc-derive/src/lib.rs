//! `#[derive(DeserializeIn)]` for perfloc (its feature `derive` re-exports it as
//! `perfloc::DeserializeIn`): implements `perfloc::serde::DeserializeIn<'de, A>` for a
//! struct with named fields, or an enum of unit and newtype variants (serde's external
//! tagging), so that its collections are built in the allocator `A`, a chunk.
//!
//! The generated code is what `serde_derive` writes for `Deserialize`, with the allocator
//! carried into every field through `perfloc::serde::In` seeds:
//!
//! - a field-identifier enum, visited by name (`visit_str`, `visit_bytes`) and by index
//!   (`visit_u64`, for formats that number fields); unknown names are ignored;
//! - `visit_map` (self-describing formats such as JSON): each field once, a duplicate is an
//!   error; an absent field is `None` for an `Option`, its `Default` with
//!   `#[perfloc(default)]`, else the format's "missing field" error;
//! - `visit_seq` (formats that write structs as tuples, such as postcard): the fields in
//!   declaration order;
//! - an error inside a field names it: "field `items`: ...".
//!
//! Which parameters: the type's first lifetime is the input's (`'de`, which `&'de str` and
//! `Text<'de, A>` borrow); its only type parameter is the allocator, or the one that
//! `#[perfloc(alloc = "A")]` names; a type with neither gets fresh ones, so it can be
//! built in any allocator. Attributes: `#[perfloc(rename = "name")]` on fields and
//! variants; on fields `#[perfloc(default)]` (`Default::default()` when absent),
//! `#[perfloc(default = "path")]` (`path(alloc)` when absent: a function of the
//! allocator, such as `Vec::new_in`, since a collection in a chunk has no `Default`) and
//! `#[perfloc(skip)]` (never read, left at `Default`).

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::{format_ident, quote};
use syn::{
    Data, DeriveInput, Fields, GenericParam, Generics, Ident, LifetimeParam, LitStr, Type,
    TypeParam, parse_macro_input, parse_quote,
};

/// Derives `perfloc::serde::DeserializeIn`; see the crate docs.
#[proc_macro_derive(DeserializeIn, attributes(perfloc))]
pub fn derive_deserialize_in(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

/// What the attributes on one field or variant say.
#[derive(Default)]
struct Attrs {
    rename: Option<String>,
    default: Absent,
    skip: bool,
    alloc: Option<Ident>,
}

/// What an absent field gets.
#[derive(Default)]
enum Absent {
    /// The format's "missing field" error (`None` for an `Option`).
    #[default]
    Required,
    /// `Default::default()`.
    Trait,
    /// `path(alloc)`: a function of the allocator, such as `Vec::new_in`.
    Path(syn::ExprPath),
}

fn attrs(list: &[syn::Attribute]) -> syn::Result<Attrs> {
    let mut out = Attrs::default();
    for attr in list.iter().filter(|a| a.path().is_ident("perfloc")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                out.rename = Some(meta.value()?.parse::<LitStr>()?.value());
            } else if meta.path.is_ident("default") {
                out.default = match meta.value() {
                    Ok(value) => Absent::Path(value.parse::<LitStr>()?.parse()?),
                    Err(_) => Absent::Trait,
                };
            } else if meta.path.is_ident("skip") {
                out.skip = true;
            } else if meta.path.is_ident("alloc") {
                let name = meta.value()?.parse::<LitStr>()?;
                out.alloc = Some(Ident::new(&name.value(), name.span()));
            } else {
                return Err(meta.error(
                    "unknown perfloc attribute: expected rename = \"..\", default, \
                     default = \"path\", skip or alloc = \"..\"",
                ));
            }
            Ok(())
        })?;
    }
    Ok(out)
}

/// The impl's parameters: the input's lifetime and allocator, added when the type has none.
struct Params {
    generics: Generics,
    de: syn::Lifetime,
    alloc: Ident,
}

fn params(input: &DeriveInput, container: &Attrs) -> syn::Result<Params> {
    let mut generics = input.generics.clone();
    let de = match generics.lifetimes().next() {
        Some(lt) => lt.lifetime.clone(),
        None => {
            let de = syn::Lifetime::new("'__de", Span::call_site());
            generics.params.insert(0, GenericParam::Lifetime(LifetimeParam::new(de.clone())));
            de
        }
    };
    let types: Vec<Ident> = generics.type_params().map(|t| t.ident.clone()).collect();
    let alloc = match (&container.alloc, types.as_slice()) {
        (Some(named), _) if types.contains(named) => named.clone(),
        (Some(named), _) => {
            return Err(syn::Error::new(named.span(), "no type parameter of this name"));
        }
        (None, []) => {
            let alloc = Ident::new("__A", Span::call_site());
            generics.params.push(GenericParam::Type(TypeParam::from(alloc.clone())));
            alloc
        }
        (None, [only]) => only.clone(),
        (None, _) => {
            return Err(syn::Error::new_spanned(
                &input.generics,
                "several type parameters: name the allocator with #[perfloc(alloc = \"A\")]",
            ));
        }
    };
    generics.make_where_clause().predicates.push(parse_quote!(#alloc: ::core::marker::Copy));
    Ok(Params { generics, de, alloc })
}

fn expand(input: &DeriveInput) -> syn::Result<Tokens> {
    let container = attrs(&input.attrs)?;
    let mut params = params(input, &container)?;
    let (de, alloc) = (params.de.clone(), params.alloc.clone());
    let name = &input.ident;
    let (_, ty_generics, _) = input.generics.split_for_impl();
    let self_ty: Type = parse_quote!(#name #ty_generics);

    let body = match &input.data {
        Data::Struct(data) => {
            let Fields::Named(fields) = &data.fields else {
                return Err(syn::Error::new_spanned(
                    name,
                    "DeserializeIn derives for structs with named fields and for enums",
                ));
            };
            let mut infos = Vec::new();
            for field in &fields.named {
                let a = attrs(&field.attrs)?;
                let ident = field.ident.clone().expect("named");
                let wire = a.rename.clone().unwrap_or_else(|| unraw(&ident));
                let ty = field.ty.clone();
                let bound = if a.skip {
                    parse_quote!(#ty: ::core::default::Default)
                } else {
                    parse_quote!(#ty: ::perfloc::serde::DeserializeIn<#de, #alloc>)
                };
                params.generics.make_where_clause().predicates.push(bound);
                infos.push((ident, wire, ty, a));
            }
            struct_body(name, &self_ty, &de, &alloc, &params.generics, &infos)
        }
        Data::Enum(data) => {
            let mut variants = Vec::new();
            for variant in &data.variants {
                let a = attrs(&variant.attrs)?;
                let wire = a.rename.clone().unwrap_or_else(|| unraw(&variant.ident));
                let ty =
                    match &variant.fields {
                        Fields::Unit => None,
                        Fields::Unnamed(f) if f.unnamed.len() == 1 => {
                            let ty = f.unnamed[0].ty.clone();
                            params.generics.make_where_clause().predicates.push(
                                parse_quote!(#ty: ::perfloc::serde::DeserializeIn<#de, #alloc>),
                            );
                            Some(ty)
                        }
                        _ => {
                            return Err(syn::Error::new_spanned(
                                &variant.ident,
                                "DeserializeIn derives for unit and newtype variants",
                            ));
                        }
                    };
                variants.push((variant.ident.clone(), wire, ty));
            }
            enum_body(name, &self_ty, &de, &alloc, &params.generics, &variants)
        }
        Data::Union(_) => {
            return Err(syn::Error::new_spanned(name, "DeserializeIn does not derive for unions"));
        }
    };

    let (impl_generics, _, where_clause) = params.generics.split_for_impl();
    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics ::perfloc::serde::DeserializeIn<#de, #alloc> for #self_ty #where_clause {
            fn deserialize_in<__D: ::perfloc::__private::serde::Deserializer<#de>>(
                __alloc: #alloc,
                __deserializer: __D,
            ) -> ::core::result::Result<Self, __D::Error> {
                #body
            }
        }
    })
}

/// A field's or variant's name without `r#`.
fn unraw(ident: &Ident) -> String {
    ident.to_string().trim_start_matches("r#").to_owned()
}

/// The identifier enum and its visitor: names (and indices) to `__I::__iN`; unknown names
/// go to `__ignore` when `unknown` is `None`, else are that error.
fn identifier(wires: &[String], unknown: Option<Tokens>) -> Tokens {
    let idents: Vec<Ident> = (0..wires.len()).map(|i| format_ident!("__i{}", i)).collect();
    let indices = (0..wires.len()).map(|i| i as u64);
    let bytes = wires.iter().map(|w| syn::LitByteStr::new(w.as_bytes(), Span::call_site()));
    let (ignore_variant, on_unknown_str, on_unknown_bytes, on_unknown_index) = match unknown {
        None => (
            quote!(__ignore,),
            quote!(::core::result::Result::Ok(__I::__ignore)),
            quote!(::core::result::Result::Ok(__I::__ignore)),
            quote!(::core::result::Result::Ok(__I::__ignore)),
        ),
        Some(variants) => (
            quote!(),
            quote!(::core::result::Result::Err(__serde::de::Error::unknown_variant(__v, #variants))),
            quote!(::core::result::Result::Err(__serde::de::Error::unknown_variant(
                &::std::string::String::from_utf8_lossy(__v), #variants
            ))),
            quote!(::core::result::Result::Err(__serde::de::Error::invalid_value(
                __serde::de::Unexpected::Unsigned(__v),
                &"a variant index"
            ))),
        ),
    };
    quote! {
        #[allow(non_camel_case_types)]
        enum __I { #(#idents,)* #ignore_variant }
        struct __IVisitor;
        impl<'__v> __serde::de::Visitor<'__v> for __IVisitor {
            type Value = __I;
            fn expecting(&self, __f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                __f.write_str("an identifier")
            }
            fn visit_u64<__E: __serde::de::Error>(self, __v: u64) -> ::core::result::Result<__I, __E> {
                match __v { #(#indices => ::core::result::Result::Ok(__I::#idents),)* _ => #on_unknown_index }
            }
            fn visit_str<__E: __serde::de::Error>(self, __v: &str) -> ::core::result::Result<__I, __E> {
                match __v { #(#wires => ::core::result::Result::Ok(__I::#idents),)* _ => #on_unknown_str }
            }
            fn visit_bytes<__E: __serde::de::Error>(self, __v: &[u8]) -> ::core::result::Result<__I, __E> {
                match __v { #(#bytes => ::core::result::Result::Ok(__I::#idents),)* _ => #on_unknown_bytes }
            }
        }
        impl<'__v> __serde::Deserialize<'__v> for __I {
            fn deserialize<__D2: __serde::Deserializer<'__v>>(__d: __D2) -> ::core::result::Result<Self, __D2::Error> {
                __serde::Deserializer::deserialize_identifier(__d, __IVisitor)
            }
        }
    }
}

type FieldInfo = (Ident, String, Type, Attrs);

fn struct_body(
    name: &Ident,
    self_ty: &Type,
    de: &syn::Lifetime,
    alloc: &Ident,
    generics: &Generics,
    fields: &[FieldInfo],
) -> Tokens {
    let live: Vec<&FieldInfo> = fields.iter().filter(|f| !f.3.skip).collect();
    let wires: Vec<String> = live.iter().map(|f| f.1.clone()).collect();
    let ident_enum = identifier(&wires, None);
    let slots: Vec<Ident> = (0..live.len()).map(|i| format_ident!("__v{}", i)).collect();
    let tags: Vec<Ident> = (0..live.len()).map(|i| format_ident!("__i{}", i)).collect();
    let types: Vec<&Type> = live.iter().map(|f| &f.2).collect();
    let map_missing = live.iter().map(|(_, wire, ty, a)| match &a.default {
        Absent::Required => {
            quote!(::perfloc::serde::missing_field::<#alloc, #ty, __M::Error>(self.alloc, #wire)?)
        }
        Absent::Trait => quote!(::core::default::Default::default()),
        Absent::Path(path) => quote!(#path(self.alloc)),
    });
    let seq_missing = live.iter().enumerate().map(|(i, (_, _, _, a))| match &a.default {
        Absent::Required => quote! {
            return ::core::result::Result::Err(__serde::de::Error::invalid_length(#i, &self))
        },
        Absent::Trait => quote!(::core::default::Default::default()),
        Absent::Path(path) => quote!(#path(self.alloc)),
    });
    let build = fields.iter().map(|(ident, _, _, a)| {
        if a.skip {
            quote!(#ident: ::core::default::Default::default())
        } else {
            let slot = &slots[live.iter().position(|f| &f.0 == ident).expect("live")];
            quote!(#ident: #slot)
        }
    });
    let build: Vec<Tokens> = build.collect();
    let name_str = name.to_string();
    let methods = quote! {
            fn visit_map<__M: __serde::de::MapAccess<#de>>(self, mut __map: __M) -> ::core::result::Result<Self::Value, __M::Error> {
                #(let mut #slots: ::core::option::Option<#types> = ::core::option::Option::None;)*
                while let ::core::option::Option::Some(__key) = __serde::de::MapAccess::next_key::<__I>(&mut __map)? {
                    match __key {
                        #(__I::#tags => {
                            if #slots.is_some() {
                                return ::core::result::Result::Err(__serde::de::Error::duplicate_field(#wires));
                            }
                            #slots = ::core::option::Option::Some(
                                __serde::de::MapAccess::next_value_seed(
                                    &mut __map,
                                    ::perfloc::serde::In::<#alloc, #types>::new(self.alloc),
                                )
                                .map_err(|__e| ::perfloc::serde::in_field(#wires, __e))?,
                            );
                        })*
                        #[allow(unreachable_patterns)]
                        _ => {
                            let _ = __serde::de::MapAccess::next_value::<__serde::de::IgnoredAny>(&mut __map)?;
                        }
                    }
                }
                #(let #slots = match #slots {
                    ::core::option::Option::Some(__v) => __v,
                    ::core::option::Option::None => #map_missing,
                };)*
                ::core::result::Result::Ok(#name { #(#build,)* })
            }
            fn visit_seq<__S: __serde::de::SeqAccess<#de>>(self, mut __seq: __S) -> ::core::result::Result<Self::Value, __S::Error> {
                #(let #slots = match __serde::de::SeqAccess::next_element_seed(
                    &mut __seq,
                    ::perfloc::serde::In::<#alloc, #types>::new(self.alloc),
                )
                .map_err(|__e| ::perfloc::serde::in_field(#wires, __e))? {
                    ::core::option::Option::Some(__v) => __v,
                    ::core::option::Option::None => #seq_missing,
                };)*
                ::core::result::Result::Ok(#name { #(#build,)* })
            }
    };
    let visitor = visitor(self_ty, de, alloc, generics, &format!("struct {name}"), methods);
    quote! {
        use ::perfloc::__private::serde as __serde;
        #ident_enum
        #visitor
        __serde::Deserializer::deserialize_struct(
            __deserializer,
            #name_str,
            &[#(#wires),*],
            __Visitor { alloc: __alloc, marker: ::core::marker::PhantomData },
        )
    }
}

/// The `__Visitor` of `self_ty`, carrying the allocator, with `methods` besides
/// `expecting`.
fn visitor(
    self_ty: &Type,
    de: &syn::Lifetime,
    alloc: &Ident,
    generics: &Generics,
    expecting: &str,
    methods: Tokens,
) -> Tokens {
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    quote! {
        struct __Visitor #impl_generics #where_clause {
            alloc: #alloc,
            marker: ::core::marker::PhantomData<fn() -> (#self_ty, &#de ())>,
        }
        impl #impl_generics __serde::de::Visitor<#de> for __Visitor #ty_generics #where_clause {
            type Value = #self_ty;
            fn expecting(&self, __f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                __f.write_str(#expecting)
            }
            #methods
        }
    }
}

type VariantInfo = (Ident, String, Option<Type>);

fn enum_body(
    name: &Ident,
    self_ty: &Type,
    de: &syn::Lifetime,
    alloc: &Ident,
    generics: &Generics,
    variants: &[VariantInfo],
) -> Tokens {
    let wires: Vec<String> = variants.iter().map(|v| v.1.clone()).collect();
    let ident_enum = identifier(&wires, Some(quote!(__VARIANTS)));
    let arms = variants.iter().enumerate().map(|(i, (ident, wire, ty))| {
        let tag = format_ident!("__i{}", i);
        match ty {
            None => quote! {
                __I::#tag => {
                    __serde::de::VariantAccess::unit_variant(__variant)?;
                    ::core::result::Result::Ok(#name::#ident)
                }
            },
            Some(ty) => quote! {
                __I::#tag => __serde::de::VariantAccess::newtype_variant_seed(
                    __variant,
                    ::perfloc::serde::In::<#alloc, #ty>::new(self.alloc),
                )
                .map(#name::#ident)
                .map_err(|__e| ::perfloc::serde::in_field(#wire, __e)),
            },
        }
    });
    let name_str = name.to_string();
    let methods = quote! {
        fn visit_enum<__E: __serde::de::EnumAccess<#de>>(self, __data: __E) -> ::core::result::Result<Self::Value, __E::Error> {
            let (__tag, __variant) = __serde::de::EnumAccess::variant::<__I>(__data)?;
            match __tag { #(#arms)* }
        }
    };
    let visitor = visitor(self_ty, de, alloc, generics, &format!("enum {name}"), methods);
    quote! {
        use ::perfloc::__private::serde as __serde;
        const __VARIANTS: &[&str] = &[#(#wires),*];
        #ident_enum
        #visitor
        __serde::Deserializer::deserialize_enum(
            __deserializer,
            #name_str,
            __VARIANTS,
            __Visitor { alloc: __alloc, marker: ::core::marker::PhantomData },
        )
    }
}
