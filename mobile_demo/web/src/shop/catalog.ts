/**
 * The mock shop's products and pages, named in the vocabulary the model was trained on: product
 * categories come from the bundle's own browse vocabularies, page and button names are the
 * simulator's (an unknown name would only be out of vocabulary).
 */
import type { FeaturesJson } from "../manifest.js";

export interface Product {
  id: number;
  name: string;
  leaf: string;
  top: string;
  priceCents: number;
}

export const PAGES = {
  home: "Page_Home",
  detail: "Page_Detail",
  cart: "Page_Cart",
  checkout: "Page_Checkout",
  paid: "Page_PaySuccess",
  search: "Page_SearchResult",
} as const;

export const BUTTONS = {
  item: "Page_Home_Button-Item",
  addToCart: "Page_Detail_Button-Cart",
  favorite: "Page_Detail_Button-Favorite",
  buyNow: "Page_Detail_Button-BuyNow",
  similar: "Page_Detail_Button-SimilarItem",
  checkout: "Page_Cart_Button-Checkout",
  submitOrder: "Page_Checkout_Button-SubmitOrder",
  backHome: "Page_PaySuccess_Button-BackHome",
  search: "Page_Search_Button-Submit",
  cart: "Page_Home_Button-Cart",
  home: "Page_Detail_Button-Home",
} as const;

const NOUNS = ["Trail runner", "Linen shirt", "Desk lamp", "Espresso cups", "Wool scarf", "Bluetooth speaker",
  "Yoga mat", "Rain jacket", "Ceramic vase", "Phone stand", "Travel mug", "Canvas tote", "Sketchbook", "Kettle",
  "Sunglasses", "Backpack"];

/** Sixteen products over the most frequent categories of the bundle's browse vocabularies. */
export function catalog(features: FeaturesJson): Product[] {
  const leaves = features.vocabularies["browse.leaf_category"] ?? [];
  const tops = features.vocabularies["browse.top_category"] ?? [];
  return NOUNS.map((noun, i) => ({
    id: i,
    name: noun,
    leaf: leaves[i % Math.max(leaves.length, 1)] ?? "L00001",
    top: tops[i % Math.max(tops.length, 1)] ?? "T001",
    priceCents: 990 + ((i * 3571) % 9000),
  }));
}
